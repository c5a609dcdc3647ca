"""The covariance term of the entropy mechanism and the token quadrants (Cui et al. 2505.22617).

Cui et al. show that, for a softmax policy and to first order in the step size η, one
update changes the entropy of a state by

    ΔH ≈ −η · Cov_{a∼π}(log π(a), π(a)·A(a))     (policy gradient, "pg")
    ΔH ≈ −η · Cov_{a∼π}(log π(a), A(a))          (natural policy gradient, "npg").

We estimate both over the sampled tokens of a step's batch, as Clip-Cov / KL-Cov do:
the covariance of the per-token pairs (log π_t, x_t) over all valid tokens of the batch,
with population normalisation (divide by N) and means over the batch, x_t = π_t·A_t or
A_t, log π_t the sampled token's log-prob at T = 1 before the update, π_t = exp(log π_t).
Departure from the paper: the paper's covariance is per state under a ∼ π; a batch has
one sampled token per state, so, like the paper's Clip-Cov, we pool the tokens of all
states. The NPG form equals the trainer's ``covariance`` metric (same function,
``losses.token_covariance``).

Quadrants split the valid tokens by advantage sign × sampled-token probability. High
probability means π_t > 0.5 (``HIGH_PROB``): the sampled token is the model's majority
choice, a fixed line that does not move with the batch (a batch median would keep the
shares near 50% by construction). Tokens with A = 0 (groups whose samples all got the
same reward) form a fifth group, ``zero_adv``, so the shares sum to 1. A quadrant's
``cov_contrib`` is its additive part of the batch covariance, Σ_{t∈q} cov_t / N with
cov_t = (A_t − Ā)(log π_t − L̄) (the NPG form); the five contributions sum to the batch
covariance, so −η·cov_contrib is the quadrant's part of the predicted entropy change.
The paper's reading: confident tokens (high π) with positive advantage and rare tokens
with negative advantage have positive cov_t and lower the entropy.
"""

from __future__ import annotations

import torch

from entrostat.losses.selections import token_covariance
from entrostat.ops import masked_mean, masked_sum

HIGH_PROB = 0.5
QUADRANTS = ("pos_high", "pos_low", "neg_high", "neg_low", "zero_adv")
COVARIANCE_FORMS = ("pg", "npg")


def token_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Advantages broadcast to tokens, (B, T): a (B,) tensor is repeated along T; (B, T) is kept."""
    if advantages.shape == mask.shape:
        return advantages.detach().float()
    if advantages.dim() == 1 and mask.dim() == 2 and advantages.shape[0] == mask.shape[0]:
        return advantages.detach().float()[:, None].expand(mask.shape)
    raise ValueError(
        f"advantages {tuple(advantages.shape)} must be (B,) or (B, T) for a mask of shape {tuple(mask.shape)}"
    )


def covariance_terms(logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Batch covariance terms {"pg": Cov(log π, π·A), "npg": Cov(log π, A)} over the valid tokens (0-d each).

    logprobs, mask: (B, T); advantages (B,) or (B, T). 0 when the mask is empty.
    """
    lp = logprobs.detach().float()
    adv = token_advantages(advantages, mask)
    return {
        "pg": masked_mean(token_covariance(lp.exp() * adv, lp, mask), mask),
        "npg": masked_mean(token_covariance(adv, lp, mask), mask),
    }


def predicted_entropy_change(cov: torch.Tensor, step_size: float) -> torch.Tensor:
    """ΔH_pred = −η · cov (Cui et al. 2505.22617, first order in η)."""
    return -step_size * cov


def token_quadrants(
    logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, high_prob: float = HIGH_PROB
) -> dict[str, torch.Tensor]:
    """Boolean (B, T) masks of the valid tokens in each of ``QUADRANTS`` (disjoint, covering the mask)."""
    m = mask.bool()
    adv = token_advantages(advantages, mask)
    high = logprobs.detach().float() > torch.log(torch.tensor(high_prob, dtype=torch.float32))
    pos, neg = m & (adv > 0), m & (adv < 0)
    return {
        "pos_high": pos & high, "pos_low": pos & ~high,
        "neg_high": neg & high, "neg_low": neg & ~high,
        "zero_adv": m & (adv == 0),
    }


def quadrant_breakdown(
    logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, high_prob: float = HIGH_PROB
) -> dict[str, dict[str, torch.Tensor]]:
    """{quadrant: {"share": token share, "cov_contrib": Σ_{t∈q} cov_t / N}} (0-d tensors).

    cov_t is the NPG per-token term (A_t − Ā)(log π_t − L̄); the contributions sum to
    ``covariance_terms(...)["npg"]`` and the shares to 1 (both 0 for an empty mask).
    """
    m = mask.bool()
    n = m.sum().clamp(min=1).float()
    cov = token_covariance(token_advantages(advantages, mask), logprobs, mask)  # (B, T), 0 off the mask
    return {
        name: {"share": q.sum().float() / n, "cov_contrib": masked_sum(cov, q) / n}
        for name, q in token_quadrants(logprobs, advantages, mask, high_prob).items()
    }
