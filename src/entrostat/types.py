"""The shared vocabulary: what flows between rollout, losses, trainer and controllers.

Names follow the glossary of ALGORITHMS.md: ``logprobs`` / ``old_logprobs`` are
log-probs of the sampled token, ``token_entropy`` is exact entropy, ``nll`` the
one-sample estimate, ``advantages`` never live in ``rewards``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class RolloutBatch:
    """One rollout batch of B = P·G sequences. Stages return filled copies via ``with_``.

    Shapes: prompt tensors (B, T_prompt); completion tensors (B, T); per-row (B,).
    """

    prompt_ids: torch.Tensor  # (B, T_prompt) left-padded
    prompt_mask: torch.Tensor  # (B, T_prompt)
    completion_ids: torch.Tensor  # (B, T) right-padded
    completion_mask: torch.Tensor  # (B, T) 1 for tokens that count
    group_ids: torch.Tensor  # (B,) prompt group of each row
    temperature: torch.Tensor | None = None  # (B,) sampling temperature per row
    is_truncated: torch.Tensor | None = None  # (B,) bool: hit max_new_tokens without EOS
    sampler_logprobs: torch.Tensor | None = None  # (B, T) at the sampling temperature
    old_logprobs: torch.Tensor | None = None  # (B, T) rollout-time policy at T = 1
    ref_logprobs: torch.Tensor | None = None  # (B, T) reference model at T = 1
    rewards: torch.Tensor | None = None  # (B,)
    advantages: torch.Tensor | None = None  # (B,) or (B, T)
    meta: dict[str, Any] = field(default_factory=dict)  # non-tensor extras (prompt indices, answers)

    def with_(self, **changes: Any) -> "RolloutBatch":
        """A copy with the given fields replaced (the batch itself is never mutated)."""
        return dataclasses.replace(self, **changes)

    @property
    def batch_size(self) -> int:
        return int(self.completion_ids.shape[0])

    def select(self, rows: torch.Tensor) -> "RolloutBatch":
        """Rows ``rows`` (an index tensor) of every per-row tensor; ``meta`` lists are indexed too."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                out[f.name] = v[rows]
            elif f.name == "meta":
                idx = rows.tolist()
                out[f.name] = {k: ([x[i] for i in idx] if isinstance(x, list) else x) for k, x in v.items()}
            else:
                out[f.name] = v
        return RolloutBatch(**out)


@dataclass(frozen=True)
class LossOutput:
    """A scalar loss to minimise and detached tensor metrics (turned into numbers by the trainer)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)

    def __iter__(self):
        """``loss, metrics = objective(...)``."""
        return iter((self.loss, self.metrics))


AUX_POSITIVES = ("reward", "group_advantage")  # AuxRequest.positives: which auxiliary rows count


@dataclass(frozen=True)
class AuxRequest:
    """Extra samples a controller needs for the coming step: declared by the controller
    (``Controller.aux_request``), fulfilled by the host (our trainer or an integration).

    The host resamples the first ⌈P·``prompt_fraction``⌉ of the step's P prompts (at least one
    group) at ``temperature``, scores them, and joins them to the step by the composition
    ``compose`` registered in ``rollout.auxiliary.AUX_COMPOSITIONS``:

    - ``substitute`` (AEPO, 2510.08141 v1–v6): the rows that count replace the first k rows of
      the main batch with advantage 1, k = ⌊min(N_reg, #counted) · ``keep_frac``⌋, N_reg =
      ``max_rows`` or ``max_rows_frac`` × the main batch's rows;
    - ``additive`` (SCOPE-RL, v7): the rows join the objective as a separate REINFORCE term
      on the rows that count, weighted by ``weight`` (α).

    ``positives`` says which rows count: ``reward`` (the verifier's correct samples) or
    ``group_advantage`` (GRPO group advantage > ``threshold``: correct in a mixed group).
    """

    temperature: float
    prompt_fraction: float
    compose: str
    positives: str = "group_advantage"
    threshold: float = 0.05
    weight: float = 1.0
    max_rows: int | None = None
    max_rows_frac: float | None = None
    keep_frac: float = 1.0


@dataclass(frozen=True)
class ScoreRequest:
    """Log-probs a controller needs of the step's main batch at another temperature, declared by the controller
    (``Controller.score_request``) and fulfilled by the host: logπ_T(y_t) = log_softmax(logits / T) at the
    sampled tokens under the pre-update policy, from the same forward pass as the old log-probs. The host then
    hands them to ``Controller.shape_advantages`` before the update (DCPO, ALGORITHMS.md §2.3b)."""

    temperature: float


@dataclass(frozen=True)
class ShapingInputs:
    """What ``Controller.shape_advantages`` reads: the main batch's ``advantages`` (B,) or (B, T), ``rewards``
    (B,), completion ``mask``, ``old_logprobs`` at T = 1 and ``tempered_logprobs`` at the requested T, all
    (B, T) and detached. The rows are the whole step's (all ranks), so batch-wide statistics are global."""

    advantages: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    old_logprobs: torch.Tensor
    tempered_logprobs: torch.Tensor
