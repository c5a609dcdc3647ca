"""Sampling completions from any transformers causal LM with its KV cache.

``sample_completions`` draws one completion per row of a left-padded prompt
batch; ``sample_groups`` draws G completions of each of P prompts (the RL
rollout and evaluation shape). Both prefill the prompts in one forward — the
groups' shared prompts once each, their KV cache then repeated G times — and
hand over to ``decode.decode``: one cached step per new token, multinomial
sampling from softmax(logits / temperature_row) (``sampling.sample_step``) with
an optional ``torch.Generator`` (deterministic for a fixed seed on CPU), rows
leaving the batch after their EOS, a preallocated KV cache
(``kv_cache.GrowingLayer``) where the model's cache allows it. Position ids
count only real prompt tokens, so a left-padded row sees the same positions as
the same prompt alone.

``sample_groups`` has the distribution of ``sample_completions`` on the
repeated prompts, not the same draws (batch shapes differ, hence rounding and
the generator's consumption). Draws also differ from entrostat ≤ 0.1's sampler
(``torch.multinomial``, finished rows decoded on): same distribution.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from entrostat.rollout.decode import decode
from entrostat.rollout.kv_cache import cache_kwargs, capacity_for, forward_parameters, returned_cache, to_growing
from entrostat.rollout.sampling import sample_step, top_p_logprobs

__all__ = ["sample_completions", "sample_groups", "sample_step", "tokenize_prompts", "top_p_logprobs"]


def tokenize_prompts(tokenizer, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Token ids and attention mask of ``texts``, left-padded: ``(B, T_prompt)`` long tensors each."""
    enc = tokenizer(list(texts), padding=True, padding_side="left", return_tensors="pt")
    return enc["input_ids"].long(), enc["attention_mask"].long()


def _new_cache(model):
    """An empty DynamicCache for ``model`` (None lets the model make its own on older transformers)."""
    try:
        from transformers import DynamicCache

        return DynamicCache(config=model.config)
    except (ImportError, TypeError):
        return None


def _last_logits_kwargs(model) -> dict:
    """``logits_to_keep=1`` where the model's forward accepts it (skips the LM head on prompt positions)."""
    return {"logits_to_keep": 1} if "logits_to_keep" in forward_parameters(model) else {}


def _check_args(max_new_tokens: int, top_p: float) -> None:
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}; 1 disables nucleus sampling")


def _prefill(model, prompt_ids: Tensor, prompt_mask: Tensor):
    """One forward over the prompts: (last logits (B, V), cache, attention mask (B, T_prompt), next position (B, 1))."""
    attn = prompt_mask.to(device=prompt_ids.device, dtype=torch.long)  # (B, T_prompt)
    positions = (attn.cumsum(-1) - 1).clamp(min=0)  # (B, T_prompt): real tokens count from 0
    out = model(input_ids=prompt_ids, attention_mask=attn, position_ids=positions, use_cache=True,
                **cache_kwargs(model, _new_cache(model)), **_last_logits_kwargs(model))
    return out.logits[:, -1, :], returned_cache(out), attn, positions[:, -1:] + 1


@torch.no_grad()
def sample_completions(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    temperature: Tensor | float,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    top_p: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample one completion per prompt row.

    prompt_ids, prompt_mask: (B, T_prompt), left-padded. temperature: (B,)
    per-row sampling temperature, or one number (<= 0 means greedy). Returns
    ``completion_ids`` (B, T) right-padded with ``pad_token_id``,
    ``completion_mask`` (B, T) float, 1 up to and including the EOS token,
    ``sampler_logprobs`` (B, T) log-prob of each sampled token under
    softmax(logits / temperature_row) (renormalised over the nucleus when
    ``top_p`` < 1; 0 where masked), and ``is_truncated``
    (B,) bool, True for rows that never emitted EOS. T is the number of steps
    actually decoded (at most ``max_new_tokens``).
    """
    return sample_groups(model, prompt_ids, prompt_mask, group_size=1, temperature=temperature,
                         max_new_tokens=max_new_tokens, eos_token_id=eos_token_id, pad_token_id=pad_token_id,
                         generator=generator, top_p=top_p)


def _row_temperatures(temperature, rows: int, device) -> Tensor:
    """(rows,) float32 temperatures from a number, a 0-d tensor or a (rows,) tensor."""
    temp = torch.as_tensor(temperature, dtype=torch.float32, device=device)
    if temp.dim() > 1 or (temp.dim() == 1 and temp.numel() not in (1, rows)):
        raise ValueError(f"temperature must be a number or a ({rows},) tensor (one per row), got shape {tuple(temp.shape)}")
    return temp.expand(rows).clone()


@torch.no_grad()
def sample_groups(
    model,
    prompt_ids: Tensor,
    prompt_mask: Tensor,
    *,
    group_size: int,
    temperature: Tensor | float,
    max_new_tokens: int,
    eos_token_id: int,
    pad_token_id: int,
    generator: torch.Generator | None = None,
    top_p: float = 1.0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``group_size`` completions of each of the P prompt rows.

    prompt_ids, prompt_mask: (P, T_prompt), left-padded. temperature: one number or
    a (P·G,) tensor, one per output row (<= 0: greedy). Returns the tensors of
    ``sample_completions`` for B = P·G rows, rows p·G … p·G + G − 1 belonging to
    prompt p. The prompts are prefilled once and their KV cache repeated G times.
    On a model whose cache can be neither preallocated nor repeated in place this
    falls back to prefilling the repeated prompts.
    """
    _check_args(max_new_tokens, top_p)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    temp = _row_temperatures(temperature, prompt_ids.shape[0] * group_size, prompt_ids.device)
    was_training = model.training
    model.eval()
    try:
        logits, cache, attn, next_pos = _prefill(model, prompt_ids, prompt_mask)
        if not to_growing(cache, capacity_for(attn.shape[1], max_new_tokens), group_size) and group_size > 1:
            if not hasattr(cache, "batch_repeat_interleave"):
                rep_ids, rep_mask = prompt_ids.repeat_interleave(group_size, 0), prompt_mask.repeat_interleave(group_size, 0)
                logits, cache, attn, next_pos = _prefill(model, rep_ids, rep_mask)
            else:
                cache.batch_repeat_interleave(group_size)
        if logits.shape[0] != temp.shape[0]:
            logits, attn, next_pos = (x.repeat_interleave(group_size, 0) for x in (logits, attn, next_pos))
        return decode(model, logits, cache, attn, next_pos, temp, max_new_tokens=max_new_tokens,
                      eos_token_id=eos_token_id, pad_token_id=pad_token_id, generator=generator, top_p=top_p)
    finally:
        model.train(was_training)
