"""Token selections (ALGORITHMS.md §1.4): pure functions returning (B, T) boolean masks.

Each runs over one *scope*: the whole optimizer mini-batch (``minibatch``, the
default: results do not depend on micro-batch size or rank count) or one
micro-batch (``microbatch``: veRL 0.9's behaviour, kept for exact comparison).
Candidates are enumerated in row-major order; with ``generator=None`` the random
choice is one ``torch.randperm`` call on the default CPU generator, as veRL does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from entrostat.registry import Registry



# name -> (cfg, token advantages, logprobs, old_logprobs, mask, token_entropy, generator) -> Selection; the
# entries are registered in losses.objective, which owns the surrogate Clip-Cov consults. "none" selects nothing.
SELECTIONS: Registry[Callable[..., "Selection"]] = Registry("selection")

@dataclass(frozen=True)
class Selection:
    """Masks over a scope, (B, T) bool. ``drop``: loss and gradient zeroed (Clip-Cov, top-entropy);
    ``penalize``: the KL-Cov penalty β·|log r| is added. ``None`` means no token."""

    drop: torch.Tensor | None = None
    penalize: torch.Tensor | None = None

    def rows(self, sl: slice) -> "Selection":
        """The part of this selection for rows ``sl`` (a micro-batch of the scope)."""
        return Selection(
            None if self.drop is None else self.drop[sl], None if self.penalize is None else self.penalize[sl]
        )


def token_covariance(advantages: torch.Tensor, logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """cov_t = (A_t − Ā)·(logπ_t − L̄) per token (Cui et al. 2505.22617, eq. for Clip-Cov / KL-Cov).

    Ā, L̄ are means over the valid tokens of the scope; logπ is detached. (B, T), 0 off the mask.
    """
    if not (advantages.shape == logprobs.shape == mask.shape):
        raise ValueError(
            f"advantages {tuple(advantages.shape)}, logprobs {tuple(logprobs.shape)} and mask "
            f"{tuple(mask.shape)} must all be (B, T)"
        )
    m = mask.bool()
    adv, lp = advantages.detach().float(), logprobs.detach().float()
    if not bool(m.any()):
        return torch.zeros_like(lp)
    cov = (adv - adv[m].mean()) * (lp - lp[m].mean())
    return torch.where(m, cov, torch.zeros_like(cov))


def _count(fraction: float, n_valid: int) -> int:
    """max(⌊fraction·N⌋, 1) — the number of tokens a covariance selection touches."""
    return max(int(fraction * n_valid), 1)


def clip_cov_select(
    cov: torch.Tensor,
    mask: torch.Tensor,
    already_clipped: torch.Tensor,
    ratio: float = 2e-4,
    lb: float = 1.0,
    ub: float = 5.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Clip-Cov: of the valid, not-PPO-clipped tokens with lb < cov < ub, drop max(⌊ρ·N⌋, 1)
    chosen uniformly at random (fewer if there are fewer candidates). Returns the drop mask (B, T)."""
    m = mask.bool()
    cand = m & ~already_clipped.bool() & (cov > lb) & (cov < ub)
    idx = torch.nonzero(cand)  # (n, 2) row-major
    drop = torch.zeros_like(m)
    if len(idx) == 0:
        return drop
    n = _count(ratio, int(m.sum()))
    perm = torch.randperm(len(idx)) if generator is None else torch.randperm(len(idx), generator=generator)
    chosen = idx[perm[: min(n, len(idx))]]
    drop[chosen[:, 0], chosen[:, 1]] = True
    return drop


def kl_cov_select(cov: torch.Tensor, mask: torch.Tensor, ratio: float = 2e-3) -> torch.Tensor:
    """KL-Cov: the top max(⌊k·N⌋, 1) valid tokens by covariance (ties broken as torch.topk does
    over the row-major list of valid tokens). Returns the penalise mask (B, T)."""
    m = mask.bool()
    flat_valid = torch.nonzero(m.reshape(-1), as_tuple=True)[0]
    out = torch.zeros_like(m)
    if len(flat_valid) == 0:
        return out
    k = _count(ratio, len(flat_valid))
    top = torch.topk(cov.reshape(-1)[flat_valid], k, largest=True).indices
    out.view(-1)[flat_valid[top]] = True
    return out


def top_entropy_select(token_entropy: torch.Tensor, mask: torch.Tensor, rho: float = 0.2) -> torch.Tensor:
    """80/20 rule (Wang et al. 2506.01939): keep valid tokens with H_t ≥ the ⌈ρ·N⌉-th largest
    entropy of the scope (the (1−ρ) quantile, ties kept). Returns the DROP mask (B, T).

    Decision: the threshold is an order statistic (no interpolation), so exactly ⌈ρ·N⌉
    tokens are kept when entropies are distinct.
    """
    m = mask.bool()
    n = int(m.sum())
    if n == 0:
        return torch.zeros_like(m)
    k = max(math.ceil(round(rho * n, 9)), 1)  # round: 0.2 × 10 must give 2, not 3
    h = token_entropy.detach().float()
    threshold = torch.topk(h[m], k, largest=True).values[-1]
    return m & (h < threshold)
