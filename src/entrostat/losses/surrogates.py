"""Per-token policy surrogates to be minimised (ALGORITHMS.md §1.3).

Every surrogate maps (logprobs, old_logprobs, advantages, bounds) to a (B, T)
per-token loss plus boolean (B, T) masks of the tokens clipped at the low
bound, at the high bound, and by the dual clip. Bounds ε_low / ε_high may be
floats or (B, T) tensors (flex_clip). Log-ratios are clamped to ±20 before
exp (as veRL does) so an absurd ratio cannot overflow.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Union

import torch

from entrostat.registry import Registry

Bound = Union[float, torch.Tensor]
LOG_RATIO_CLAMP = 20.0


@dataclass(frozen=True)
class SurrogateOut:
    loss: torch.Tensor  # (B, T)
    clipped_low: torch.Tensor  # (B, T) bool: A < 0, r < 1 − ε_low
    clipped_high: torch.Tensor  # (B, T) bool: A > 0, r > 1 + ε_high
    dual_clipped: torch.Tensor  # (B, T) bool: A < 0, −A·r exceeded −A·c


@dataclass(frozen=True)
class ClipParams:
    """ε_low, ε_high (float or (B, T)), dual clip c (None: off), GPPO β₁ / β₂, flex_clip bounds."""

    eps_low: Bound = 0.2
    eps_high: Bound = 0.2
    dual_clip: float | None = 3.0
    beta1: float = 0.5
    beta2: float = 1.0
    flex: "FlexBounds | None" = None


SurrogateFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, ClipParams], SurrogateOut]
SURROGATES: Registry[SurrogateFn] = Registry("surrogate")


def importance_ratio(logprobs: torch.Tensor, old_logprobs: torch.Tensor) -> torch.Tensor:
    """r = exp(clamp(logπ_θ − logπ_old, ±20)), (B, T)."""
    return torch.exp((logprobs - old_logprobs).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))


def _dual_clip(loss: torch.Tensor, adv: torch.Tensor, c: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """For A < 0: min(loss, −A·c) (Ye et al. 1912.09729); returns (loss, mask of dual-clipped tokens)."""
    if c is None:
        return loss, torch.zeros_like(loss, dtype=torch.bool)
    cap = -adv * c
    dual = (adv < 0) & (loss > cap)
    return torch.where(dual, cap, loss), dual


@SURROGATES.register("ppo_clip")
def ppo_clip(logprobs, old_logprobs, advantages, p: ClipParams) -> SurrogateOut:
    """GRPO / DAPO: max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high)), then dual clip for A < 0."""
    ratio = importance_ratio(logprobs, old_logprobs)
    lo, hi = 1 - p.eps_low, 1 + p.eps_high
    clipped_ratio = torch.minimum(torch.maximum(ratio, _as(lo, ratio)), _as(hi, ratio))
    unclipped, clipped = -advantages * ratio, -advantages * clipped_ratio
    loss, dual = _dual_clip(torch.maximum(unclipped, clipped), advantages, p.dual_clip)
    was_clipped = clipped > unclipped
    return SurrogateOut(loss, was_clipped & (advantages < 0) & ~dual, was_clipped & (advantages > 0), dual)


@SURROGATES.register("pg")
def plain_pg(logprobs, old_logprobs, advantages, p: ClipParams) -> SurrogateOut:
    """Unclipped importance-weighted policy gradient −A·r (the base of KL-Cov; ignores bounds)."""
    loss = -advantages * importance_ratio(logprobs, old_logprobs)
    none = torch.zeros_like(loss, dtype=torch.bool)
    return SurrogateOut(loss, none, none, none)


@SURROGATES.register("reinforce")
def reinforce(logprobs, old_logprobs, advantages, p: ClipParams) -> SurrogateOut:
    """On-policy REINFORCE −A·logπ_θ; its gradient equals ppo_clip's at r = 1."""
    loss = -advantages * logprobs
    none = torch.zeros_like(loss, dtype=torch.bool)
    return SurrogateOut(loss, none, none, none)


def _gppo(logprobs, old_logprobs, advantages, p: ClipParams) -> SurrogateOut:
    """Gradient-preserving clip (GPPO 2508.07629; CE-GPPO 2509.20712), ∇L = −F·A·∇logπ with

    F = β₁(1−ε_low) where r < 1−ε_low and A < 0; F = β₂(1+ε_high) where r > 1+ε_high and A > 0;
    elsewhere the plain −A·r (F = r); then the dual clip for A < 0. The forward value of a
    clipped token is −β·bound·A·r/sg(r), i.e. its ppo_clip value scaled by β.
    """
    ratio = importance_ratio(logprobs, old_logprobs)
    lo, hi = 1 - p.eps_low, 1 + p.eps_high
    low = (ratio < lo) & (advantages < 0)
    high = (ratio > hi) & (advantages > 0)
    straight = ratio / ratio.detach()  # value 1, gradient ∇logπ
    loss = torch.where(low, -p.beta1 * _as(lo, ratio) * advantages * straight, -advantages * ratio)
    loss = torch.where(high, -p.beta2 * _as(hi, ratio) * advantages * straight, loss)
    loss, dual = _dual_clip(loss, advantages, p.dual_clip)
    return SurrogateOut(loss, low & ~dual, high, dual)


@SURROGATES.register("gppo")
def gppo(logprobs, old_logprobs, advantages, p: ClipParams) -> SurrogateOut:
    """GPPO (Klear 2508.07629): the gradient-preserving clip with β₁ = β₂ = 1 whatever ``p`` says."""
    return _gppo(logprobs, old_logprobs, advantages, replace(p, beta1=1.0, beta2=1.0))


SURROGATES.register("ce_gppo")(_gppo)


def _as(bound: Bound, like: torch.Tensor) -> torch.Tensor:
    return bound.to(like.dtype) if isinstance(bound, torch.Tensor) else torch.tensor(bound, dtype=like.dtype)


# ---------------------------------------------------------------- flexible bounds (2602.09782)
@dataclass(frozen=True)
class FlexBounds:
    """Linear probability-dependent bounds ε⁺(p) = b⁺ + a⁺·p, ε⁻(p) = b⁻ + a⁻·p (a ≤ 0: rare tokens get wider bounds).

    The paper's functions are unpublished; these linear forms and defaults are ours
    (ALGORITHMS.md §1.3). ``weight_high`` / ``weight_low`` blend the active bound with
    the standard ε: E = w·ε(p) + (1 − w)·ε_std — the schedules of §2.4 set them per step.
    """

    b_high: float = 0.28
    a_high: float = -0.18
    b_low: float = 0.30
    a_low: float = -0.20
    eps_std: float = 0.2
    weight_high: float = 1.0
    weight_low: float = 1.0

    def bounds(self, old_logprobs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(E⁻, E⁺) per token, each (B, T), from the rollout probability p = π_old(a_t)."""
        prob = old_logprobs.detach().exp()
        e_high = self.b_high + self.a_high * prob
        e_low = self.b_low + self.a_low * prob
        e_high = self.weight_high * e_high + (1 - self.weight_high) * self.eps_std
        e_low = self.weight_low * e_low + (1 - self.weight_low) * self.eps_std
        return e_low, e_high


@SURROGATES.register("flex_clip")
def flex_clip(logprobs, old_logprobs, advantages, p: ClipParams) -> SurrogateOut:
    """ppo_clip with the per-token bounds of ``p.flex`` (Flexible Entropy Control, 2602.09782)."""
    e_low, e_high = (p.flex or FlexBounds()).bounds(old_logprobs)
    return ppo_clip(logprobs, old_logprobs, advantages, replace(p, eps_low=e_low, eps_high=e_high))
