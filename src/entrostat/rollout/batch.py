"""Build a RolloutBatch from problems: format, tokenize, sample G completions per prompt, decode."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from entrostat.rollout.backends import HF_SAMPLER, Sampler
from entrostat.rollout.hf import tokenize_prompts
from entrostat.tasks.base import Problem
from entrostat.types import RolloutBatch


def generate_rollout(
    model,
    tokenizer,
    problems: Sequence[Problem],
    *,
    format_prompt: Callable[[Problem], str],
    group_size: int,
    temperature: float | torch.Tensor,
    max_new_tokens: int,
    generator: torch.Generator | None = None,
    sampler: Sampler = HF_SAMPLER,
) -> RolloutBatch:
    """P problems × G samples → RolloutBatch with completions and decoded texts in ``meta``.

    ``temperature`` is a float or a (P·G,) tensor (per-row temperatures). Each prompt is
    prefilled once (``sample_groups``); ``prompt_ids``/``prompt_mask`` hold it G times,
    rows p·G … p·G + G − 1. ``meta`` holds ``problems`` (per row) and ``texts`` (decoded
    completions without special tokens). ``sampler``: a rollout backend's sampler
    (``rollout.backends.build_backend``), the HF one by default; one holding its own weights
    (vLLM) must be synced with ``model`` by the caller.
    """
    rows = [p for p in problems for _ in range(group_size)]
    ids_p, mask_p = tokenize_prompts(tokenizer, [format_prompt(p) for p in problems])  # (P, T_prompt)
    b = len(rows)
    temp = torch.as_tensor(temperature, dtype=torch.float32).expand(b).clone()
    ids, mask, logps, truncated = sampler.sample_groups(
        model, ids_p, mask_p, group_size=group_size, temperature=temp, max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, generator=generator,
    )
    prompt_ids, prompt_mask = ids_p.repeat_interleave(group_size, 0), mask_p.repeat_interleave(group_size, 0)
    texts = decode_completions(tokenizer, ids, mask)
    return RolloutBatch(
        prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=ids, completion_mask=mask,
        group_ids=torch.arange(len(problems)).repeat_interleave(group_size), temperature=temp,
        is_truncated=truncated, sampler_logprobs=logps, meta={"problems": rows, "texts": texts},
    )


def decode_completions(tokenizer, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    """Text of each completion (masked tokens and special tokens dropped)."""
    out = []
    for row, m in zip(ids.tolist(), mask.bool().tolist()):
        out.append(tokenizer.decode([t for t, keep in zip(row, m) if keep], skip_special_tokens=True))
    return out
