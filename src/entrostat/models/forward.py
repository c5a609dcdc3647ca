"""The policy forward pass of the trainer: per-token log-probs and exact entropy of completions."""

from __future__ import annotations

import contextlib

import torch

from entrostat.ops import logprobs_and_entropy, logprobs_from_logits
from entrostat.types import RolloutBatch


def autocast(enabled: bool):
    """bf16 autocast on the model's device when enabled (fp32 master weights stay fp32)."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def completion_logprobs(
    model: torch.nn.Module, batch: RolloutBatch, *, bf16: bool = False, temperature: float = 1.0,
    share_prompts: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(a_t), H_t) of every completion position, each (B, T) fp32, at ``temperature``.

    Prompt (left-padded) and completion (right-padded) are concatenated; position ids
    count real tokens only, so padding does not shift positions. Only the T + 1 last
    logits are computed (``logits_to_keep``). ``share_prompts``: consecutive rows with the
    same prompt (a GRPO group) run its forward pass once (``shared_prompt_logits``).
    """
    logits = completion_logits(model, batch, bf16=bf16, share_prompts=share_prompts)
    return logprobs_and_entropy(logits, batch.completion_ids, temperature)


def completion_scores(
    model: torch.nn.Module, batch: RolloutBatch, temperatures: tuple[float, ...], *, bf16: bool = False,
    share_prompts: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, dict[float, torch.Tensor]]:
    """``completion_logprobs`` at T = 1 and, from the same forward pass, log_softmax(logits / T) at the sampled
    tokens for each T of ``temperatures``: (log π, H, {T: log π_T}), all (B, T) fp32."""
    logits = completion_logits(model, batch, bf16=bf16, share_prompts=share_prompts)
    logp, ent = logprobs_and_entropy(logits, batch.completion_ids)
    return logp, ent, {t: logprobs_from_logits(logits, batch.completion_ids, t) for t in temperatures}


def completion_logits(model: torch.nn.Module, batch: RolloutBatch, *, bf16: bool = False,
                      share_prompts: bool = False) -> torch.Tensor:
    """(B, T, V) logits predicting each completion token (see ``completion_logprobs``)."""
    if share_prompts:
        return shared_prompt_logits(model, batch, bf16=bf16)
    ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)  # (B, Tp + T)
    attn = torch.cat([batch.prompt_mask.long(), batch.completion_mask.long()], dim=1)
    # Completion positions after EOS are masked in attention but must still get positions.
    attn_pos = torch.cat([batch.prompt_mask.long(), torch.ones_like(batch.completion_mask, dtype=torch.long)], dim=1)
    positions = (attn_pos.cumsum(-1) - 1).clamp(min=0)
    t = batch.completion_ids.shape[1]
    with autocast(bf16):
        logits = model(input_ids=ids, attention_mask=attn, position_ids=positions, logits_to_keep=t + 1).logits
    return logits[:, :-1]  # (B, T, V): logits at position i predict token i + 1


def prompt_runs(batch: RolloutBatch) -> torch.Tensor:
    """Lengths of the runs of consecutive rows with identical prompt ids and mask (sum = B)."""
    ids, mask = batch.prompt_ids, batch.prompt_mask
    new = torch.ones(ids.shape[0], dtype=torch.bool, device=ids.device)
    new[1:] = (ids[1:] != ids[:-1]).any(-1) | (mask[1:] != mask[:-1]).any(-1)
    starts = torch.nonzero(new).flatten()
    return torch.diff(torch.cat([starts, starts.new_tensor([ids.shape[0]])]))


def shared_prompt_logits(model: torch.nn.Module, batch: RolloutBatch, *, bf16: bool = False) -> torch.Tensor:
    """``completion_logits`` with each distinct prompt's forward pass run once and shared by its rows.

    The prompt's keys and values (with their autograd graph) are repeated to the rows of its
    run; the completions then run against them as a cache. The backward pass sums the rows'
    gradients into the one prompt pass. Same values as the plain path up to float rounding;
    a GRPO group of G rows costs one prompt pass instead of G. Needs a transformers model
    that accepts a cache (every Hugging Face causal LM; ``rollout.kv_cache.cache_kwargs``
    names it as the model's transformers version does).
    """
    from transformers import DynamicCache

    from entrostat.rollout.kv_cache import cache_kwargs, returned_cache

    runs = prompt_runs(batch)
    first = torch.cumsum(runs, 0) - runs
    p_ids, p_mask = batch.prompt_ids[first], batch.prompt_mask[first].long()
    p_pos = (p_mask.cumsum(-1) - 1).clamp(min=0)
    t = batch.completion_ids.shape[1]
    with autocast(bf16):
        out = model(input_ids=p_ids, attention_mask=p_mask, position_ids=p_pos, use_cache=True, logits_to_keep=1)
        logits = out.logits.repeat_interleave(runs, dim=0)  # (B, 1, V): predicts the first completion token
        if t > 1:
            cache = DynamicCache()
            for i, layer in enumerate(returned_cache(out).layers):
                cache.update(layer.keys.repeat_interleave(runs, dim=0), layer.values.repeat_interleave(runs, dim=0), i)
            mask = torch.cat([batch.prompt_mask.long(), batch.completion_mask[:, :-1].long()], dim=1)
            pos = batch.prompt_mask.long().sum(-1, keepdim=True) + torch.arange(t - 1, device=mask.device)
            rest = model(input_ids=batch.completion_ids[:, :-1], attention_mask=mask, position_ids=pos,
                         use_cache=True, **cache_kwargs(model, cache)).logits
            logits = torch.cat([logits, rest], dim=1)
    return logits
