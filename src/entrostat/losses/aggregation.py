"""Loss aggregation (ALGORITHMS.md §1.2) with a step-wide normaliser.

The normaliser counts tokens / sequences of the WHOLE optimizer step (all
micro-batches, all ranks), so summing micro-batch losses gives the same loss
and gradient whatever the micro-batch size or number of ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from entrostat.registry import Registry

# (masked per-token loss (B, T), bool mask (B, T), normaliser) -> the (micro-)batch's share of the step's loss
Aggregation = Callable[[torch.Tensor, torch.Tensor, "Normalizer"], torch.Tensor]
AGGREGATIONS: Registry[Aggregation] = Registry("aggregation")


@dataclass(frozen=True)
class Normalizer:
    """Counts for one optimizer step. ``max_len`` is Dr.GRPO's constant T_max (the generation budget);
    ``num_correct_tokens`` the valid tokens of correct samples (for a positive NLL over them only)."""

    num_tokens: float
    num_seqs: float
    max_len: float = 1.0
    num_correct_tokens: float = 0.0

    @staticmethod
    def from_mask(mask: torch.Tensor, max_len: int | None = None, correct: torch.Tensor | None = None) -> "Normalizer":
        """Counts of the whole step's (B, T) completion mask; ``max_len`` defaults to T; ``correct`` (B,) bool."""
        return Normalizer(
            num_tokens=float(mask.sum()),
            num_seqs=float(mask.shape[0]),
            max_len=float(max_len if max_len is not None else mask.shape[-1]),
            num_correct_tokens=float(mask[correct].sum()) if correct is not None else 0.0,
        )

    def merged(self, other: "Normalizer") -> "Normalizer":
        """Counts of two disjoint shards (e.g. two ranks) of one step."""
        return Normalizer(self.num_tokens + other.num_tokens, self.num_seqs + other.num_seqs, self.max_len,
                          self.num_correct_tokens + other.num_correct_tokens)


def aggregate(per_token_loss: torch.Tensor, mask: torch.Tensor, mode: str, normalizer: Normalizer) -> torch.Tensor:
    """Scalar loss of a (micro-)batch: its share of the step's aggregate.

    token-mean: Σ L·M / N_tokens.  seq-mean-token-mean: Σ_seq (Σ_t L·M / Σ_t M) / N_seq.
    seq-mean-token-sum: Σ L·M / N_seq.  seq-mean-token-sum-norm (Dr.GRPO): Σ L·M / (N_seq · T_max).
    An all-zero mask gives 0 with zero gradient. Masked positions may hold NaN.
    """
    if per_token_loss.shape != mask.shape:
        raise ValueError(
            f"per_token_loss has shape {tuple(per_token_loss.shape)} but mask {tuple(mask.shape)}; they must match"
        )
    m = mask.bool()
    loss = torch.where(m, per_token_loss, torch.zeros((), dtype=per_token_loss.dtype, device=per_token_loss.device))
    return AGGREGATIONS.get(mode)(loss, m, normalizer)


@AGGREGATIONS.register("token-mean")
def _token_mean(loss: torch.Tensor, m: torch.Tensor, norm: Normalizer) -> torch.Tensor:
    return loss.sum() / max(norm.num_tokens, 1.0)


@AGGREGATIONS.register("seq-mean-token-mean")
def _seq_mean_token_mean(loss: torch.Tensor, m: torch.Tensor, norm: Normalizer) -> torch.Tensor:
    per_seq = loss.sum(-1) / m.sum(-1).clamp(min=1).to(loss.dtype)
    return per_seq.sum() / max(norm.num_seqs, 1.0)


@AGGREGATIONS.register("seq-mean-token-sum")
def _seq_mean_token_sum(loss: torch.Tensor, m: torch.Tensor, norm: Normalizer) -> torch.Tensor:
    return loss.sum() / max(norm.num_seqs, 1.0)


@AGGREGATIONS.register("seq-mean-token-sum-norm")
def _seq_mean_token_sum_norm(loss: torch.Tensor, m: torch.Tensor, norm: Normalizer) -> torch.Tensor:
    """Dr.GRPO: the constant T_max in place of each sequence's length."""
    return loss.sum() / max(norm.num_seqs * norm.max_len, 1.0)
