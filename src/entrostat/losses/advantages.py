"""Group advantages (ALGORITHMS.md §1.1) and Entropy-Adv shaping (Cheng et al. 2506.14758).

Groups are given by ``group_ids`` (B,) — any integer labels; every group must
hold at least two samples for ``grpo`` and ``rloo``. Rewards must be finite.
"""

from __future__ import annotations

from typing import Callable

import torch

from entrostat.registry import Registry

AdvantageFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ADVANTAGES: Registry[AdvantageFn] = Registry("advantage estimator")

GRPO_EPS = 1e-6


def group_ids_from_size(batch_size: int, group_size: int) -> torch.Tensor:
    """Contiguous group ids [0]*G + [1]*G + ...; raises when B is not a whole number of groups."""
    if group_size < 1 or batch_size % group_size != 0:
        raise ValueError(
            f"batch of {batch_size} rows cannot be split into whole groups of size {group_size}; "
            "the batch must be prompts × group_size"
        )
    return torch.arange(batch_size // group_size).repeat_interleave(group_size)


def _group_stats(rewards: torch.Tensor, group_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row (group size, group sum, group sum of squares) via scatter over dense group indices."""
    _, dense = torch.unique(group_ids, return_inverse=True)
    n_groups = int(dense.max()) + 1 if dense.numel() else 0
    r = rewards.double()
    zeros = torch.zeros(n_groups, dtype=torch.float64, device=rewards.device)
    size = zeros.clone().index_add_(0, dense, torch.ones_like(r))
    total = zeros.clone().index_add_(0, dense, r)
    sq = zeros.clone().index_add_(0, dense, r * r)
    return size[dense], total[dense], sq[dense]


def _validate(rewards: torch.Tensor, group_ids: torch.Tensor, min_group: int, name: str) -> None:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must have shape (B,), got {tuple(rewards.shape)}")
    if group_ids.shape != rewards.shape:
        raise ValueError(f"group_ids has shape {tuple(group_ids.shape)} but rewards {tuple(rewards.shape)}; both must be (B,)")
    if group_ids.dtype.is_floating_point or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must be integers, got dtype {group_ids.dtype}")
    if not bool(torch.isfinite(rewards).all()):
        raise ValueError("rewards contain NaN or inf; the reward function must return finite numbers")
    if min_group > 1 and rewards.numel():
        _, counts = torch.unique(group_ids, return_counts=True)
        if int(counts.min()) < min_group:
            raise ValueError(
                f"advantage estimator {name!r} needs at least {min_group} samples per group, but a group has "
                f"{int(counts.min())}; use group_size >= 2 (or dr_grpo, which gives A = 0 for a lone sample)"
            )


@ADVANTAGES.register("grpo")
def grpo_advantages(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """A_i = (R_i − mean_g) / (std_g + 1e-6), std unbiased; groups with identical rewards get exactly 0."""
    _validate(rewards, group_ids, 2, "grpo")
    n, s, _ = _group_stats(rewards, group_ids)
    centred = rewards.double() - s / n
    # Two-pass variance (Σ(R − mean)² per group): no cancellation for small spreads or large offsets.
    _, dense = torch.unique(group_ids, return_inverse=True)
    var = _group_stats(centred, dense)[2] / (n - 1)
    # Identical rewards (exactly, not "small variance"): centred is ~1e-17 from rounding; force exact zeros.
    r, slots = rewards.double(), torch.zeros(rewards.shape[0], dtype=torch.float64)  # ≥ one slot per group
    hi = slots.scatter_reduce(0, dense, r, "amax", include_self=False)
    lo = slots.scatter_reduce(0, dense, r, "amin", include_self=False)
    same = (hi == lo)[dense]
    adv = torch.where(same, torch.zeros_like(centred), centred / (var.sqrt() + GRPO_EPS))
    return adv.to(rewards.dtype if rewards.dtype.is_floating_point else torch.float32)


@ADVANTAGES.register("dr_grpo")
def dr_grpo_advantages(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """A_i = R_i − mean_g (Dr.GRPO, 2503.20783: no std normalisation)."""
    _validate(rewards, group_ids, 1, "dr_grpo")
    n, s, _ = _group_stats(rewards, group_ids)
    return (rewards.double() - s / n).to(_float(rewards))


@ADVANTAGES.register("rloo")
def rloo_advantages(rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """A_i = R_i − mean of the other G−1 rewards of the group (leave-one-out baseline)."""
    _validate(rewards, group_ids, 2, "rloo")
    n, s, _ = _group_stats(rewards, group_ids)
    r = rewards.double()
    return (r - (s - r) / (n - 1)).to(_float(rewards))


def _float(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.dtype.is_floating_point else torch.float32


def compute_advantages(name: str, rewards: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor:
    """Advantages (B,) by registered estimator ``name`` (grpo, dr_grpo, rloo, ...)."""
    return ADVANTAGES.get(name)(rewards, group_ids)


def entropy_adv_shaping(
    advantages: torch.Tensor, token_entropy: torch.Tensor, alpha: float = 0.4, kappa: float = 2.0
) -> torch.Tensor:
    """Entropy-Adv (Cheng et al. 2506.14758): A'_t = A_t + min(α·sg(H_t), |A_t|/κ), per token (B, T).

    ``advantages`` (B,) or (B, T); ``token_entropy`` (B, T), detached here. The
    defaults α = 0.4, κ = 2 are the commonly quoted values, unverified against
    the authors' code (ALGORITHMS.md §1.1).
    """
    adv = advantages[:, None].expand_as(token_entropy) if advantages.dim() == 1 else advantages
    bonus = torch.minimum(alpha * token_entropy.detach(), adv.abs() / kappa)
    return adv + bonus


def dcpo_alpha(gap: float, pass_rate: float) -> float:
    """DCPO's mixing weight (the AEPO authors' code, commit 15dc716; ALGORITHMS.md §2.3b step 4 and 6):
    α = a / (1 + a), a = gap / pass_rate, gap = min(|H* − H_prev|, cap) given by the controller.
    Their code divides by a zero pass rate; we give α = 0 there (the step is plain GRPO)."""
    if pass_rate <= 0:
        return 0.0
    a = gap / pass_rate
    return a / (1.0 + a)


def dcpo_advantages(
    advantages: torch.Tensor, correct: torch.Tensor, old_logprobs: torch.Tensor, tempered_logprobs: torch.Tensor,
    alpha: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DCPO's per-token advantages (ALGORITHMS.md §2.3b step 3 and 5): A'_i,t = (1 − α)·A_i + α·c_i·w_i,t with
    w_i,t = exp(logπ_T(y_t) − logπ_1(y_t)) under the pre-update policy and c_i = 1[correct].

    ``advantages`` (B,) or (B, T); ``correct`` (B,) bool; ``old_logprobs`` / ``tempered_logprobs`` (B, T) at T = 1
    and at the controller's T. Returns (A' (B, T), w (B, T)). For T > 1, w > 1 on a token whose probability is
    below the tempered one (a rare token), so correct samples push their rare tokens up: entropy rises; T < 1
    favours their likely tokens.
    """
    adv = advantages[:, None].expand_as(old_logprobs) if advantages.dim() == 1 else advantages
    w = torch.exp(tempered_logprobs - old_logprobs)
    return (1.0 - alpha) * adv + alpha * correct.to(adv.dtype)[:, None] * w, w
