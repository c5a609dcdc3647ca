"""SCOPE-RL continuous temperature (arXiv 2510.08141 v7; ALGORITHMS.md §2.3 — our reconstruction, no official code).

T_aux = clip(1 + H* − H_prev, T_min, T_max) with (T_min, T_max) = (0.8, 1.2); the
first step uses T_aux = 1. AEPO (``aepo``) is its saturated limit. The
auxiliary-loss weight α (default 1/64) is passed through as ``aux_alpha``. Each step it declares
its auxiliary rollout (``aux_request``): a fraction α of the prompt groups resampled at T_aux, whose
positives (``positive_filter``: correct samples, or group advantage > ``positive_threshold``) join
the objective as an additive REINFORCE term of weight α (the ``additive`` composition).

``signal``: ``entropy`` (default) or ``nll``. H* may be a schedule, compared at
the next step's index k = stats["step"]; a non-finite signal leaves the state
untouched. H* defaults to 0.5, AEPO's script value (v7 gives no default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from entrostat.config.base import doc
from entrostat.control._common import clip, finite, measurement, require, require_target, typed_params
from entrostat.control.aepo import SIGNALS
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.control.targets import build_target
from entrostat.types import AUX_POSITIVES, AuxRequest


@dataclass(frozen=True)
class ScopeRLParams:
    """Parameters of SCOPE-RL's continuous temperature and additive term, ``control.kwargs``."""

    actuators: ClassVar[tuple[str, ...]] = ("aux_temperature", "aux_alpha")

    target: float | dict = doc(0.5, "H*: a number or a schedule {kind: ..., ...}; v7 gives no default (0.5: AEPO's)")
    alpha: float = doc(1 / 64, "α: the fraction of prompt groups resampled and the additive term's weight; v7: 1/64")
    t_min: float = doc(0.8, "T_min: the lowest auxiliary temperature (≤ 1)")
    t_max: float = doc(1.2, "T_max: the highest auxiliary temperature (≥ 1)")
    signal: str = doc("entropy", "the measured entropy: entropy (exact, ours) or nll (the sampled estimate)")
    positive_filter: str = doc("reward", "which resampled rows count: reward (correct, ours) or group_advantage")
    positive_threshold: float = doc(0.05, "group advantage above which a row counts (positive_filter group_advantage)")

    def validate(self, where: str = "") -> None:
        require_target(self.target, where)
        require(finite(self.alpha) and 0 < self.alpha <= 1, where, "alpha", self.alpha, "must be a fraction in (0, 1]")
        require(finite(self.t_min) and 0 < self.t_min <= 1, where, "t_min", self.t_min, "must lie in (0, 1]")
        require(finite(self.t_max) and self.t_max >= 1, where, "t_max", self.t_max, "must be a finite number ≥ 1")
        require(self.signal in SIGNALS, where, "signal", self.signal, f"must be one of {', '.join(SIGNALS)}")
        require(self.positive_filter in AUX_POSITIVES, where, "positive_filter", self.positive_filter,
                f"must be one of {', '.join(AUX_POSITIVES)}")
        require(finite(self.positive_threshold), where, "positive_threshold", self.positive_threshold,
                "must be a finite number")


@CONTROLLERS.register("scope_rl")
class ScopeRL(Controller):
    """Actuators ``aux_temperature`` and ``aux_alpha``, fulfilled through ``aux_request``.

    Built from a ``ScopeRLParams``, or from its fields as keyword arguments (``build_controller``).
    """

    name = "scope_rl"
    Params = ScopeRLParams
    actuators = ScopeRLParams.actuators
    _STATE = ("temperature", "h_prev", "last_target")

    def __init__(self, params: ScopeRLParams | None = None, /, **kwargs: Any):
        self.params = p = typed_params(ScopeRLParams, params, kwargs)
        self.target = build_target(p.target)
        self.alpha, self.t_min, self.t_max, self.signal = float(p.alpha), float(p.t_min), float(p.t_max), p.signal
        self.temperature = 1.0  # first step
        self.h_prev = 0.0
        self.last_target = 0.0

    def value(self) -> dict[str, float]:
        return {"aux_temperature": self.temperature, "aux_alpha": self.alpha}

    def aux_request(self) -> AuxRequest:
        p = self.params
        return AuxRequest(temperature=self.temperature, prompt_fraction=self.alpha, compose="additive",
                          positives=p.positive_filter, threshold=p.positive_threshold, weight=self.alpha)

    def update(self, stats: Mapping[str, float]) -> None:
        got = measurement(stats, self.signal)
        if got is None:
            return
        step, total, measured = got
        self.h_prev = measured
        self.last_target = self.target(step, total)
        self.temperature = clip(1.0 + self.last_target - measured, self.t_min, self.t_max)

    def signals(self) -> dict[str, float]:
        return {
            "target": self.last_target,
            "measured": self.h_prev,
            "error": self.last_target - self.h_prev,
            "temperature": self.temperature,
        }
