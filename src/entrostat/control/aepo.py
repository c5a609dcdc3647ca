"""AEPO temperature switch, faithful mode (arXiv 2510.08141 v1–v6; ALGORITHMS.md §2.2).

Bang-bang on the auxiliary sampling temperature: T_aux = T_high if H_prev ≤ H*
else T_low, with H_prev the previous step's signal and H_prev = 0 before the
first step (so the first step samples hot). ``aux_keep_frac`` is 1.0 while raising
and 0.5 while lowering (the paper halves the number of kept auxiliary samples,
k = min(N_reg, #kept), when lowering entropy). Each step it declares its auxiliary rollout
(``aux_request``): the first ``prompt_fraction`` of the prompts resampled at T_aux, whose
positives (group advantage > ``positive_threshold``) replace up to N_reg rows of the batch
(the ``substitute`` composition of ``rollout.auxiliary``).

``signal``: ``entropy`` (exact token-mean entropy, our default) or ``nll`` (the
sampled estimate the paper's code used; recipe ``aepo_paper``). Departures from
the paper: H* may be a schedule, compared at the next step's index k =
stats["step"]; a non-finite signal leaves the state untouched.
Defaults: H* = 0.5 (the paper's script; its headline runs use 0.75), T_high 1.2, T_low 0.8, 1/4 of
the prompts resampled, N_reg = 60 (of 512 × 5 = 2560 rows in the paper's runs; ``n_reg_frac``
gives it as a fraction of the batch instead), positive threshold 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from entrostat.config.base import doc
from entrostat.control._common import finite, measurement, require, require_target, typed_params, whole
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.control.targets import build_target
from entrostat.types import AuxRequest

SIGNALS = ("entropy", "nll")


def validate_switch(p: Any, where: str) -> None:
    """The rules of a temperature switch's parameters (``target``, ``t_high``, ``t_low``, ``signal``)."""
    require_target(p.target, where)
    for name in ("t_high", "t_low"):
        value = getattr(p, name)
        require(finite(value) and value > 0, where, name, value, "must be a temperature > 0")
    require(p.t_low <= p.t_high, where, "t_low", p.t_low, f"must be ≤ t_high = {p.t_high}")
    require(p.signal in SIGNALS, where, "signal", p.signal, f"must be one of {', '.join(SIGNALS)}")


class TemperatureSwitch(Controller):
    """AEPO's bang-bang switch, shared with DCPO: after each step, ``raising`` = 1[H_prev ≤ H*(k)], with H_prev the
    step's ``signal`` and k = stats["step"]; a non-finite signal leaves the state untouched."""

    _STATE = ("h_prev", "raising", "last_target")

    def __init__(self, params: Any):
        self.params = params
        self.target = build_target(params.target)
        self.t_high, self.t_low, self.signal = float(params.t_high), float(params.t_low), params.signal
        self.h_prev = 0.0
        self.raising = 1  # H_prev = 0 ≤ H* (targets are ≥ 0): the first step raises
        self.last_target = 0.0

    @property
    def temperature(self) -> float:
        return self.t_high if self.raising else self.t_low

    def update(self, stats: Mapping[str, float]) -> None:
        got = measurement(stats, self.signal)
        if got is None:
            return
        step, total, measured = got
        self.h_prev = measured
        self.last_target = self.target(step, total)
        self.raising = int(self.h_prev <= self.last_target)

    def signals(self) -> dict[str, float]:
        return {
            "target": self.last_target,
            "measured": self.h_prev,
            "error": self.last_target - self.h_prev,
            "raising": float(self.raising),
        }


@dataclass(frozen=True)
class AEPOParams:
    """Parameters of AEPO's temperature switch and auxiliary rollout, ``control.kwargs``."""

    actuators: ClassVar[tuple[str, ...]] = ("aux_temperature", "aux_keep_frac")

    target: float | dict = doc(0.5, "H*: a number or a schedule {kind: ..., ...}; paper: 0.5 (script), 0.75 (headline)")
    t_high: float = doc(1.2, "T_high: the auxiliary temperature while raising entropy; paper: 1.2")
    t_low: float = doc(0.8, "T_low: the auxiliary temperature while lowering entropy; paper: 0.8")
    signal: str = doc("entropy", "the measured entropy: entropy (exact, ours) or nll (the sampled estimate, the "
                      "paper's code)")
    prompt_fraction: float = doc(0.25, "share of the step's prompts resampled at T_aux; paper: the first 1/4")
    n_reg: int = doc(60, "N_reg: most positives substituted per step; paper: 60 of 512 × 5 = 2560 rows")
    n_reg_frac: float | None = doc(None, "N_reg as a fraction of the main batch (overrides n_reg); paper: 60/2560")
    positive_threshold: float = doc(0.05, "a resampled sample is a positive when its group advantage exceeds this; "
                                    "paper: 0.05")

    def validate(self, where: str = "") -> None:
        validate_switch(self, where)
        require(finite(self.prompt_fraction) and 0 < self.prompt_fraction <= 1, where, "prompt_fraction",
                self.prompt_fraction, "must be a fraction in (0, 1]")
        require(whole(self.n_reg, 1), where, "n_reg", self.n_reg, "must be a whole number of rows ≥ 1")
        if self.n_reg_frac is not None:
            require(finite(self.n_reg_frac) and 0 < self.n_reg_frac <= 1, where, "n_reg_frac", self.n_reg_frac,
                    "must be a fraction in (0, 1], or null to use n_reg")
        require(finite(self.positive_threshold), where, "positive_threshold", self.positive_threshold,
                "must be a finite number")


@CONTROLLERS.register("aepo")
class AEPO(TemperatureSwitch):
    """Actuators ``aux_temperature`` and ``aux_keep_frac``, fulfilled through ``aux_request``.

    Built from an ``AEPOParams``, or from its fields as keyword arguments (``build_controller``).
    """

    name = "aepo"
    Params = AEPOParams
    actuators = AEPOParams.actuators

    def __init__(self, params: AEPOParams | None = None, /, **kwargs: Any):
        super().__init__(typed_params(AEPOParams, params, kwargs))

    def value(self) -> dict[str, float]:
        return {"aux_temperature": self.temperature, "aux_keep_frac": 1.0 if self.raising else 0.5}

    def aux_request(self) -> AuxRequest:
        p = self.params
        return AuxRequest(temperature=self.temperature, prompt_fraction=p.prompt_fraction, compose="substitute",
                          positives="group_advantage", threshold=p.positive_threshold, max_rows=p.n_reg,
                          max_rows_frac=p.n_reg_frac, keep_frac=self.value()["aux_keep_frac"])
