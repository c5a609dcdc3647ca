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


@dataclass
class StepStats:
    """Floats describing one optimizer step; read by controllers and loggers.

    ``entropy`` is the token-mean of exact token entropy over the step's rollout
    batch (all ranks); ``nll`` the token-mean of −log π of sampled tokens.
    """

    step: int
    entropy: float = float("nan")
    nll: float = float("nan")
    reward_mean: float = float("nan")
    pass_rate: float = float("nan")
    clip_frac_low: float = 0.0
    clip_frac_high: float = 0.0
    covariance: float = float("nan")
    response_length: float = float("nan")
    truncation_rate: float = float("nan")
    zero_adv_group_frac: float = float("nan")
    extra: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, float]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d
