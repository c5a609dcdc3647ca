"""DCPO, the AEPO authors' later method (github 597358816/AEPO, commit 15dc716; ALGORITHMS.md §2.3b).

No auxiliary rollout: the main batch's correct samples get a per-token advantage bonus weighted
toward the temperature-T distribution. Per step, with H_prev the previous step's entropy signal
(0 before the first step, as in their code):

1. T = T_high if H_prev ≤ H* else T_low (AEPO's switch);
2. c_i = 1[reward_i > ``correct_threshold``], pass rate = mean_i c_i over the step's batch;
3. w_i,t = exp(logπ_T(y_t) − logπ_1(y_t)) under the pre-update policy (``score_request``: the host
   computes logπ_T in the old-log-prob forward);
4. α = a / (1 + a), a = min(|H* − H_prev|, ``gap_cap``) / pass rate;
5. A'_i,t = (1 − α)·A_i + α·c_i·w_i,t, then the recipe's surrogate (theirs: ppo_clip, ε 0.2, c = 3,
   token-mean).

Departures: a zero pass rate gives α = 0 (their code divides by zero), counted in the
``zero_pass_steps`` signal; H* may be a schedule, compared at the next step's index; the signal
defaults to exact entropy (``signal: nll`` reads the sampled estimate; their code reads the actor's
logged entropy of the previous update); H* before the first update is the target's value at step 0.
Metrics: ``control/dcpo/{alpha, temperature, pass_rate, mean_weight, zero_pass_steps, ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from entrostat.config.base import doc
from entrostat.control._common import finite, require, typed_params
from entrostat.control.aepo import TemperatureSwitch, validate_switch
from entrostat.control.base import CONTROLLERS
from entrostat.losses.advantages import dcpo_advantages, dcpo_alpha
from entrostat.ops import masked_mean
from entrostat.types import ScoreRequest, ShapingInputs


@dataclass(frozen=True)
class DCPOParams:
    """Parameters of DCPO, ``control.kwargs``; defaults are the authors' code's."""

    actuators: ClassVar[tuple[str, ...]] = ()  # it reshapes advantages; no loss field moves

    target: float | dict = doc(0.5, "H*: a number or a schedule {kind: ..., ...}; their script: 0.5")
    t_high: float = doc(1.2, "T while raising entropy (H_prev ≤ H*); their code: 1.2")
    t_low: float = doc(0.8, "T while lowering entropy; their code: 0.8")
    gap_cap: float = doc(0.1, "cap of |H* − H_prev| in a = min(|H* − H_prev|, cap) / pass rate; their code: 0.1")
    correct_threshold: float = doc(0.05, "a sample is correct when its reward exceeds this; their code: 0.05")
    signal: str = doc("entropy", "the measured entropy: entropy (exact, ours) or nll (the sampled estimate)")

    def validate(self, where: str = "") -> None:
        validate_switch(self, where)
        require(finite(self.gap_cap) and self.gap_cap >= 0, where, "gap_cap", self.gap_cap, "must be ≥ 0")
        require(finite(self.correct_threshold), where, "correct_threshold", self.correct_threshold,
                "must be a finite number")


@CONTROLLERS.register("dcpo")
class DCPO(TemperatureSwitch):
    """Declares logπ_T of the main batch (``score_request``) and turns it into DCPO's advantages."""

    name = "dcpo"
    Params = DCPOParams
    actuators = DCPOParams.actuators
    _STATE = (*TemperatureSwitch._STATE, "zero_pass_steps")

    def __init__(self, params: DCPOParams | None = None, /, **kwargs: Any):
        super().__init__(typed_params(DCPOParams, params, kwargs))
        self.last_target = float(self.target(0, 1))  # the first step's gap needs H* before any update
        self.zero_pass_steps = 0

    def value(self) -> dict[str, float]:
        return {}

    def score_request(self) -> ScoreRequest:
        return ScoreRequest(self.temperature)

    def shape_advantages(self, inputs: ShapingInputs) -> tuple[torch.Tensor, dict[str, float]]:
        correct = inputs.rewards > self.params.correct_threshold
        pass_rate = float(correct.float().mean())
        gap = min(abs(self.last_target - self.h_prev), self.params.gap_cap)
        alpha = dcpo_alpha(gap, pass_rate)
        self.zero_pass_steps += int(pass_rate == 0)
        adv, w = dcpo_advantages(inputs.advantages, correct, inputs.old_logprobs, inputs.tempered_logprobs, alpha)
        correct_tokens = inputs.mask * correct.to(inputs.mask.dtype)[:, None]
        mean_w = float(masked_mean(w, correct_tokens)) if bool(correct.any()) else float("nan")
        return adv, {"alpha": alpha, "pass_rate": pass_rate, "mean_weight": mean_w, "temperature": self.temperature}

    def signals(self) -> dict[str, float]:
        return {**super().signals(), "zero_pass_steps": float(self.zero_pass_steps)}
