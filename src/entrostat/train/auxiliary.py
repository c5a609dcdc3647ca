"""Auxiliary rollouts of AEPO (2510.08141 v1–v6) and SCOPE-RL (v7), ALGORITHMS.md §2.2–§2.3.

The controller chooses the auxiliary temperature each step; this module picks the
auxiliary prompts and turns the scored auxiliary samples into training rows:
AEPO substitutes positives for the first rows of the main batch, SCOPE-RL keeps
them apart for an additive REINFORCE term (composed in ``losses.objective``).
"""

from __future__ import annotations

import math

import torch

from entrostat.losses.advantages import compute_advantages
from entrostat.rollout.merge import cat_rows
from entrostat.tasks.scoring import correct_mask
from entrostat.types import RolloutBatch


def aux_prompt_count(prompts: int, fraction: float) -> int:
    """⌈P·fraction⌉, at least one prompt group."""
    return max(1, math.ceil(prompts * fraction - 1e-9))


def positive_rows(aux: RolloutBatch, filter_by: str, threshold: float = 0.05) -> torch.Tensor:
    """(B_aux,) bool: correct samples (``reward``), or group advantage > threshold (``group_advantage``:
    correct in a group that is not all-correct — AEPO's filter)."""
    if filter_by == "reward":
        return correct_mask(aux)  # the verifier's verdict, not a shaped reward
    return compute_advantages("grpo", aux.rewards, aux.group_ids) > threshold


def aepo_substitute(
    main: RolloutBatch, aux: RolloutBatch, *, n_reg: int, keep_frac: float, pad_token_id: int, threshold: float = 0.05
) -> tuple[RolloutBatch, int]:
    """AEPO step 4–5: k = min(N_reg, #kept) positives (halved when lowering entropy) replace the first
    k rows of ``main`` with advantage 1 on every token. Returns (batch, k); k = 0 leaves ``main``
    unchanged (the original code crashes there; we skip the regulariser for the step)."""
    kept = torch.nonzero(positive_rows(aux, "group_advantage", threshold)).squeeze(-1)
    k = int(min(n_reg, len(kept)) * keep_frac)
    if k == 0:
        return main, 0
    pos = aux.select(kept[:k])
    pos = pos.with_(advantages=torch.ones(k, dtype=main.advantages.dtype), group_ids=torch.full((k,), -1),
                    old_logprobs=None, ref_logprobs=None)
    rest = main.select(torch.arange(k, main.batch_size)).with_(old_logprobs=None, ref_logprobs=None)
    return cat_rows([pos, rest], pad_token_id), k
