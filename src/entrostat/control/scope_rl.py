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

from typing import Any, Mapping

from entrostat.config.base import ConfigError
from entrostat.control._common import (
    choice,
    clip,
    measurement,
    number,
)
from entrostat.control.aepo import SIGNALS
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.control.targets import build_target
from entrostat.types import AUX_POSITIVES, AuxRequest


@CONTROLLERS.register("scope_rl")
class ScopeRL(Controller):
    """Actuators ``aux_temperature`` and ``aux_alpha``, fulfilled through ``aux_request``."""

    name = "scope_rl"
    actuators = ("aux_temperature", "aux_alpha")
    _STATE = ("temperature", "h_prev", "last_target")

    def __init__(
        self, target: Any = 0.5, alpha: float = 1 / 64, t_min: float = 0.8, t_max: float = 1.2, signal: str = "entropy",
        positive_filter: str = "reward", positive_threshold: float = 0.05,
    ):
        what = "controller 'scope_rl'"
        self.positive_filter = choice(positive_filter, "positive_filter", AUX_POSITIVES, what)
        self.positive_threshold = number(positive_threshold, "positive_threshold", what=what)
        self.target = build_target(target)
        self.alpha = number(alpha, "alpha", low=0.0, what=what)
        self.t_min = number(t_min, "t_min", low=0.0, what=what)
        self.t_max = number(t_max, "t_max", low=0.0, what=what)
        if not 0.0 < self.t_min <= 1.0 <= self.t_max:
            raise ConfigError(f"{what}: need 0 < t_min ≤ 1 ≤ t_max, got t_min={t_min}, t_max={t_max}")
        self.signal = choice(signal, "signal", SIGNALS, what)
        self.temperature = 1.0  # first step
        self.h_prev = 0.0
        self.last_target = 0.0

    def value(self) -> dict[str, float]:
        return {"aux_temperature": self.temperature, "aux_alpha": self.alpha}

    def aux_request(self) -> AuxRequest:
        return AuxRequest(temperature=self.temperature, prompt_fraction=self.alpha, compose="additive",
                          positives=self.positive_filter, threshold=self.positive_threshold, weight=self.alpha)

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
