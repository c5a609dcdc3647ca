"""Step statistics: the numbers of one RL step's metrics record, computed from its tensors."""

from __future__ import annotations

import torch

from entrostat.diagnostics.step import policy_diagnostics
from entrostat.losses import token_covariance
from entrostat.ops import masked_mean
from entrostat.tasks.scoring import correct_mask
from entrostat.types import RolloutBatch


def reward_stats(main: RolloutBatch, group_size: int) -> dict[str, float]:
    """Rewards and lengths of the step's main rollout."""
    rewards = main.rewards.view(-1, group_size)
    return {
        "reward_mean": float(main.rewards.mean()),
        "pass_rate": float(correct_mask(main).float().mean()),  # the verifier's, never the shaped reward
        "response_length": float(main.completion_mask.sum(-1).mean()),
        "truncation_rate": float(main.is_truncated.float().mean()),
        "zero_adv_group_frac": float((rewards.max(-1).values == rewards.min(-1).values).float().mean()),
        "reward_errors": float(main.meta.get("reward_errors", 0)),
        **main.meta.get("shaping", {}),  # reward/verifier_mean, format_rate, overlong_penalty_mean when shaping is on
    }


def policy_stats(batch: RolloutBatch, token_entropy: torch.Tensor, first_row: int = 0) -> dict[str, float]:
    """Exact entropy, nll (both at T = 1) and the covariance term over the main-rollout rows
    ``first_row:`` of the training batch."""
    rows = slice(first_row, None)
    mask, old = batch.completion_mask[rows], batch.old_logprobs[rows]
    adv = batch.advantages[rows]
    adv_tok = adv[:, None].expand_as(mask) if adv.dim() == 1 else adv  # (B, T): per-token advantages (DCPO)
    return {
        "entropy": float(masked_mean(token_entropy[rows], mask)),
        "nll": float(masked_mean(-old, mask)),
        "covariance": float(masked_mean(token_covariance(adv_tok, old, mask), mask)),
    }


def step_diagnostics(batch: RolloutBatch, token_entropy: torch.Tensor, first_row: int, eta: float) -> dict[str, float]:
    """``diag/...`` of the main-rollout rows; η = lr × optimizer steps on this rollout."""
    rows = slice(first_row, None)
    return policy_diagnostics(token_entropy[rows], batch.old_logprobs[rows], batch.advantages[rows],
                              batch.completion_mask[rows], eta)
