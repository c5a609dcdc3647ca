"""The loss configuration: the core objective's own typed parameters, validated.

Defaults are those of ALGORITHMS.md. Presets are the YAML recipes (``entrostat.config.recipes.loss_preset``),
which quote the papers (PAPERS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from entrostat.config.base import ConfigError, doc
from entrostat.losses.advantages import ADVANTAGES
from entrostat.losses.aggregation import AGGREGATIONS
from entrostat.losses.regularizers import KL_ESTIMATORS
from entrostat.losses.selections import SELECTIONS
from entrostat.losses.surrogates import SURROGATES
from entrostat.registry import unknown_name_message

SCOPES = ("minibatch", "microbatch")
POSITIVE_NLL_NORMS = ("step", "correct_tokens")


@dataclass
class FlexConfig:
    """Probability-dependent bounds of flex_clip (2602.09782; linear forms are ours)."""

    b_high: float = doc(0.28, "ε⁺(p) = b_high + a_high·p: the upper bound for a token of rollout probability p")
    a_high: float = doc(-0.18, "slope of ε⁺(p); ≤ 0 so rare tokens get a wider upper bound")
    b_low: float = doc(0.30, "ε⁻(p) = b_low + a_low·p: the lower bound")
    a_low: float = doc(-0.20, "slope of ε⁻(p); ≤ 0")
    eps_std: float = doc(0.2, "the standard ε the schedules blend with")
    weight_high: float = doc(1.0, "blend of the upper bound: w·ε⁺(p) + (1−w)·eps_std (schedules set it per step)")
    weight_low: float = doc(1.0, "blend of the lower bound: w·ε⁻(p) + (1−w)·eps_std")

    def validate(self, where: str = "") -> None:
        if self.a_high > 0 or self.a_low > 0:
            raise ConfigError(f"{where}.a_high / a_low must be ≤ 0 (rare tokens get wider bounds), got {self.a_high}, {self.a_low}")
        if self.eps_std < 0:
            raise ConfigError(f"{where}.eps_std = {self.eps_std:g} must be ≥ 0")
        for side in ("high", "low"):  # a ≤ 0, so the bound is smallest at p = 1
            b, a = getattr(self, f"b_{side}"), getattr(self, f"a_{side}")
            if b + a < 0:
                raise ConfigError(f"{where}.b_{side} + a_{side} = {b + a:g}: the bound at p = 1 must be ≥ 0")


@dataclass
class LossConfig:
    """How the policy loss of one step is composed (ALGORITHMS.md §1)."""

    advantage: str = doc("grpo", "advantage estimator: " + ", ".join(ADVANTAGES.names()))
    surrogate: str = doc("ppo_clip", "per-token surrogate: " + ", ".join(SURROGATES.names()))
    aggregation: str = doc("token-mean", "loss aggregation: " + ", ".join(AGGREGATIONS))
    eps_low: float = doc(0.2, "ε_low: ratio clipped below at 1 − ε_low")
    eps_high: float = doc(0.2, "ε_high: ratio clipped above at 1 + ε_high (DAPO Clip-Higher: 0.28)")
    dual_clip: float | None = doc(3.0, "dual clip c for A < 0 (must be > 1); null turns it off (DAPO preset: 10)")
    beta1: float = doc(0.5, "CE-GPPO β₁: gradient factor of low-clipped negative tokens (raising it lowers entropy)")
    beta2: float = doc(1.0, "CE-GPPO β₂: gradient factor of high-clipped positive tokens (raising it raises entropy)")
    positive_nll_coef: float = doc(0.0, "coefficient of the mean NLL of correct responses added to the loss (Klear: 0.1)")
    positive_nll_norm: str = doc("step", "what the positive NLL term is divided by: step (the step's aggregation, like "
                                 "the policy loss; ours) or correct_tokens (the step's correct tokens only, as "
                                 "Kwai-Klear's code)")
    flex: FlexConfig = doc(FlexConfig(), "flex_clip bounds")
    selection: str = doc("none", "token selection: none, clip_cov, kl_cov, top_entropy (losses.SELECTIONS)")
    selection_scope: str = doc("minibatch", "where selections run: minibatch (invariant) or microbatch (veRL-compatible)")
    clip_cov_ratio: float = doc(2e-4, "Clip-Cov ρ: fraction of valid tokens whose gradient is dropped")
    clip_cov_lb: float = doc(1.0, "Clip-Cov lower covariance bound (strict)")
    clip_cov_ub: float = doc(5.0, "Clip-Cov upper covariance bound (strict)")
    kl_cov_ratio: float = doc(2e-3, "KL-Cov k: fraction of valid tokens penalised (2e-3 for ≤7B, 2e-4 for 32B)")
    kl_cov_coef: float = doc(1.0, "KL-Cov β on |log r| (the paper: 1; veRL's default 0.1 is a known mismatch)")
    top_entropy_rho: float = doc(0.2, "80/20 rule: fraction of highest-entropy tokens that keep their gradient")
    entropy_adv: bool = doc(False, "Entropy-Adv shaping A + min(α·H, |A|/κ) (2506.14758)")
    entropy_adv_alpha: float = doc(0.4, "Entropy-Adv α (unverified published value)")
    entropy_adv_kappa: float = doc(2.0, "Entropy-Adv κ (unverified published value)")
    entropy_coef: float = doc(0.0, "entropy bonus coefficient c: loss −= c·aggregate(H_t) (c < 0: an entropy penalty)")
    kl_coef: float = doc(0.0, "KL-to-reference coefficient (0: no reference model is needed)")
    kl_estimator: str = doc("k3", "KL estimator: " + ", ".join(KL_ESTIMATORS.names()))

    def validate(self, where: str = "") -> None:
        at = f"{where}." if where else ""
        for name, value, valid in (
            ("advantage", self.advantage, ADVANTAGES.names()),
            ("surrogate", self.surrogate, SURROGATES.names()),
            ("aggregation", self.aggregation, list(AGGREGATIONS)),
            ("selection", self.selection, ["none", *SELECTIONS.names()]),
            ("selection_scope", self.selection_scope, list(SCOPES)),
            ("positive_nll_norm", self.positive_nll_norm, list(POSITIVE_NLL_NORMS)),
            ("kl_estimator", self.kl_estimator, KL_ESTIMATORS.names()),
        ):
            if value not in valid:
                raise ConfigError(f"{at}{name}: " + unknown_name_message(name, value, valid))
        _check(at, "eps_low", self.eps_low, self.eps_low >= 0, "must be ≥ 0")
        _check(at, "eps_high", self.eps_high, self.eps_high >= 0, "must be ≥ 0")
        if self.dual_clip is not None:
            _check(at, "dual_clip", self.dual_clip, self.dual_clip > 1, "must be > 1, or null to turn it off")
        for name in ("clip_cov_ratio", "kl_cov_ratio", "top_entropy_rho"):
            v = getattr(self, name)
            _check(at, name, v, 0 < v <= 1, "is a fraction of tokens and must be in (0, 1]")
        _check(at, "clip_cov_ub", self.clip_cov_ub, self.clip_cov_lb < self.clip_cov_ub, f"must exceed clip_cov_lb = {self.clip_cov_lb}")
        _check(at, "entropy_coef", self.entropy_coef, math.isfinite(self.entropy_coef), "must be finite")
        for name in ("kl_coef", "positive_nll_coef", "kl_cov_coef", "beta1", "beta2", "entropy_adv_alpha"):
            _check(at, name, getattr(self, name), getattr(self, name) >= 0, "must be ≥ 0")
        _check(at, "entropy_adv_kappa", self.entropy_adv_kappa, self.entropy_adv_kappa > 0, "must be > 0")
        if self.selection == "kl_cov" and self.surrogate != "pg":
            raise ConfigError(
                f"{at}selection: kl_cov uses the unclipped surrogate −A·r (the paper applies no PPO clip); "
                f"set {at}surrogate: pg (or use the kl_cov preset) instead of {self.surrogate!r}"
            )
        self.flex.validate(f"{at}flex")


def _check(at: str, name: str, value: Any, ok: bool, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{at}{name} = {value!r} {rule}")
