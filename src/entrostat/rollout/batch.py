"""Build a RolloutBatch from problems: format, tokenize, repeat G times, sample, decode."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from entrostat.rollout.hf import sample_completions, tokenize_prompts
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
) -> RolloutBatch:
    """P problems × G samples → RolloutBatch with completions and decoded texts in ``meta``.

    ``temperature`` is a float or a (P·G,) tensor (per-row temperatures). ``meta`` holds
    ``problems`` (per row) and ``texts`` (decoded completions without special tokens).
    """
    rows = [p for p in problems for _ in range(group_size)]
    prompt_ids, prompt_mask = tokenize_prompts(tokenizer, [format_prompt(p) for p in rows])
    b = len(rows)
    temp = torch.as_tensor(temperature, dtype=torch.float32).expand(b).clone()
    ids, mask, logps, truncated = sample_completions(
        model, prompt_ids, prompt_mask, temperature=temp, max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, generator=generator,
    )
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
