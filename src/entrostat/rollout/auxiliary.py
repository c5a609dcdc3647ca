"""Auxiliary rollouts that controllers declare (``types.AuxRequest``; ALGORITHMS.md §2.2–§2.3).

A controller such as AEPO or SCOPE-RL declares each step what extra samples it needs; the host
(our trainer, or an integration) samples them and calls ``join_auxiliary``, which picks the rows
that count and joins them to the step by a registered composition:

- ``substitute`` (AEPO 2510.08141 v1–v6): positives replace the first rows of the main batch;
- ``additive`` (SCOPE-RL v7, our reconstruction): positives are kept apart for an additive
  REINFORCE term, composed in ``losses.objective.auxiliary_objective``.

A new method that needs extra samples registers a composition here (or reuses one) and declares
requests from its controller; the trainer carries no branch for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from entrostat.losses.advantages import compute_advantages
from entrostat.registry import Registry
from entrostat.rollout.merge import cat_rows
from entrostat.tasks.scoring import correct_mask
from entrostat.types import AUX_POSITIVES, AuxRequest, RolloutBatch


@dataclass(frozen=True)
class AuxRows:
    """Rows of an auxiliary rollout for an additive term: ``counts`` (B_aux,) bool marks the rows that
    count, ``weight`` is the term's coefficient."""

    batch: RolloutBatch
    counts: torch.Tensor
    weight: float


@dataclass(frozen=True)
class AuxOutcome:
    """The step's training batch after the auxiliary rollout joined it.

    ``first_main_row``: rows before it are not the main rollout's (step statistics skip them).
    ``extra``: rows for an additive term, or None. ``stats``: ``aux/...`` metrics.
    """

    batch: RolloutBatch
    first_main_row: int = 0
    extra: AuxRows | None = None
    stats: dict[str, float] = field(default_factory=dict)


Composition = Callable[[AuxRequest, RolloutBatch, RolloutBatch, int], AuxOutcome]
AUX_COMPOSITIONS: Registry[Composition] = Registry("auxiliary composition")


def aux_prompt_count(prompts: int, fraction: float) -> int:
    """⌈P·fraction⌉, at least one prompt group."""
    return max(1, math.ceil(prompts * fraction - 1e-9))


def positive_rows(aux: RolloutBatch, filter_by: str, threshold: float = 0.05) -> torch.Tensor:
    """(B_aux,) bool: correct samples (``reward``), or group advantage > threshold (``group_advantage``:
    correct in a group that is not all-correct — AEPO's filter)."""
    if filter_by == "reward":
        return correct_mask(aux)  # the verifier's verdict, not a shaped reward
    if filter_by != "group_advantage":
        raise ValueError(f"positives must be one of {', '.join(AUX_POSITIVES)}, got {filter_by!r}")
    return compute_advantages("grpo", aux.rewards, aux.group_ids) > threshold


def join_auxiliary(request: AuxRequest, main: RolloutBatch, aux: RolloutBatch, pad_token_id: int) -> AuxOutcome:
    """Join the scored auxiliary rollout ``aux`` to the step as ``request.compose`` says, with its ``aux/`` stats."""
    outcome = AUX_COMPOSITIONS.get(request.compose)(request, main, aux, pad_token_id)
    stats = {"aux/temperature": request.temperature, "aux/rows": float(aux.batch_size),
             "aux/tokens": float(aux.completion_mask.sum()), "aux/reward_mean": float(aux.rewards.mean())}
    return AuxOutcome(outcome.batch, outcome.first_main_row, outcome.extra, {**stats, **outcome.stats})


@AUX_COMPOSITIONS.register("additive")
def additive(request: AuxRequest, main: RolloutBatch, aux: RolloutBatch, pad_token_id: int) -> AuxOutcome:
    """SCOPE-RL: the main batch is unchanged; the auxiliary rows join an additive term of weight α."""
    counts = positive_rows(aux, request.positives, request.threshold)
    return AuxOutcome(main, extra=AuxRows(aux, counts, request.weight))


@AUX_COMPOSITIONS.register("substitute")
def substitute(request: AuxRequest, main: RolloutBatch, aux: RolloutBatch, pad_token_id: int) -> AuxOutcome:
    """AEPO step 4–5: k = ⌊min(N_reg, #kept) · keep_frac⌋ positives replace the first k rows of ``main``
    with advantage 1 on every token. k = 0 leaves ``main`` unchanged (the original code crashes there;
    we skip the regulariser for the step)."""
    n_reg = request.max_rows if request.max_rows_frac is None else max(1, round(request.max_rows_frac * main.batch_size))
    kept = torch.nonzero(positive_rows(aux, request.positives, request.threshold)).squeeze(-1)
    k = int(min(n_reg, len(kept)) * request.keep_frac)
    if k == 0:
        return AuxOutcome(main, stats={"aux/substituted": 0.0})
    pos = aux.select(kept[:k])
    pos = pos.with_(advantages=torch.ones(k, dtype=main.advantages.dtype), group_ids=torch.full((k,), -1),
                    old_logprobs=None, ref_logprobs=None)
    rest = main.select(torch.arange(k, main.batch_size)).with_(old_logprobs=None, ref_logprobs=None)
    return AuxOutcome(cat_rows([pos, rest], pad_token_id), first_main_row=k, stats={"aux/substituted": float(k)})
