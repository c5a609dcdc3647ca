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

from typing import Any, Mapping

from entrostat.config.base import ConfigError
from entrostat.control._common import (
    choice,
    measurement,
    number,
)
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.control.targets import build_target
from entrostat.types import AuxRequest

SIGNALS = ("entropy", "nll")


@CONTROLLERS.register("aepo")
class AEPO(Controller):
    """Actuators ``aux_temperature`` and ``aux_keep_frac``, fulfilled through ``aux_request``."""

    name = "aepo"
    actuators = ("aux_temperature", "aux_keep_frac")
    _STATE = ("h_prev", "raising", "last_target")

    def __init__(self, target: Any = 0.5, t_high: float = 1.2, t_low: float = 0.8, signal: str = "entropy",
                 prompt_fraction: float = 0.25, n_reg: int = 60, n_reg_frac: float | None = None,
                 positive_threshold: float = 0.05):
        what = "controller 'aepo'"
        self.prompt_fraction = number(prompt_fraction, "prompt_fraction", low=1e-9, high=1.0, what=what)
        self.n_reg = int(number(n_reg, "n_reg", low=1, what=what))
        self.n_reg_frac = None if n_reg_frac is None else number(n_reg_frac, "n_reg_frac", low=1e-9, high=1.0, what=what)
        self.positive_threshold = number(positive_threshold, "positive_threshold", what=what)
        self.target = build_target(target)
        self.t_high = number(t_high, "t_high", low=0.0, what=what)
        self.t_low = number(t_low, "t_low", low=0.0, what=what)
        if not 0.0 < self.t_low <= self.t_high:
            raise ConfigError(f"{what}: need 0 < t_low ≤ t_high, got t_low={t_low}, t_high={t_high}")
        self.signal = choice(signal, "signal", SIGNALS, what)
        self.h_prev = 0.0
        self.raising = 1  # H_prev = 0 ≤ H* (targets are ≥ 0): the first step raises
        self.last_target = 0.0

    def value(self) -> dict[str, float]:
        if self.raising:
            return {"aux_temperature": self.t_high, "aux_keep_frac": 1.0}
        return {"aux_temperature": self.t_low, "aux_keep_frac": 0.5}

    def aux_request(self) -> AuxRequest:
        v = self.value()
        return AuxRequest(temperature=v["aux_temperature"], prompt_fraction=self.prompt_fraction, compose="substitute",
                          positives="group_advantage", threshold=self.positive_threshold, max_rows=self.n_reg,
                          max_rows_frac=self.n_reg_frac, keep_frac=v["aux_keep_frac"])

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
