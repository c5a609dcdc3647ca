"""The policy forward pass of the trainer: per-token log-probs and exact entropy of completions."""

from __future__ import annotations

import contextlib

import torch

from entrostat.ops import logprobs_and_entropy
from entrostat.types import RolloutBatch


def autocast(enabled: bool):
    """bf16 autocast on the model's device when enabled (fp32 master weights stay fp32)."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def completion_logprobs(
    model: torch.nn.Module, batch: RolloutBatch, *, bf16: bool = False, temperature: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(a_t), H_t) of every completion position, each (B, T) fp32, at ``temperature``.

    Prompt (left-padded) and completion (right-padded) are concatenated; position ids
    count real tokens only, so padding does not shift positions. Only the T + 1 last
    logits are computed (``logits_to_keep``).
    """
    ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)  # (B, Tp + T)
    attn = torch.cat([batch.prompt_mask.long(), batch.completion_mask.long()], dim=1)
    # Completion positions after EOS are masked in attention but must still get positions.
    attn_pos = torch.cat([batch.prompt_mask.long(), torch.ones_like(batch.completion_mask, dtype=torch.long)], dim=1)
    positions = (attn_pos.cumsum(-1) - 1).clamp(min=0)
    t = batch.completion_ids.shape[1]
    with autocast(bf16):
        logits = model(input_ids=ids, attention_mask=attn, position_ids=positions, logits_to_keep=t + 1).logits
    logits = logits[:, :-1]  # (B, T, V): logits at position i predict token i + 1
    return logprobs_and_entropy(logits, batch.completion_ids, temperature)
