"""Held-out evaluation: n samples per prompt, unbiased pass@k, mean@n, distinct correct answers."""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from entrostat.eval.passk import pass_at_k_many
from entrostat.rollout.batch import generate_rollout
from entrostat.tasks.base import Problem, Task


@torch.no_grad()
def evaluate(
    model,
    tokenizer,
    task: Task,
    problems: Sequence[Problem],
    *,
    format_prompt: Callable[[Problem], str],
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    batch_rows: int = 1024,
) -> dict[str, float]:
    """pass@k for k = 1, 2, 4, … ≤ n, mean@n (mean reward) and distinct correct answers per prompt.

    Sampling uses its own generator seeded with ``seed``, so an evaluation never moves
    the training random streams. Settings (n, temperature) belong with the numbers.
    """
    gen = torch.Generator().manual_seed(seed)
    per_call = max(1, batch_rows // n)
    n_correct, rewards, distinct = [], [], []
    for s in range(0, len(problems), per_call):
        chunk = problems[s : s + per_call]
        batch = generate_rollout(
            model, tokenizer, chunk, format_prompt=format_prompt, group_size=n,
            temperature=temperature, max_new_tokens=max_new_tokens, generator=gen,
        )
        texts = batch.meta["texts"]
        for i, p in enumerate(chunk):
            scores = [task.score(p, t) for t in texts[i * n : (i + 1) * n]]
            correct = [t for t, sc in zip(texts[i * n : (i + 1) * n], scores) if sc >= 1.0]
            n_correct.append(len(correct))
            rewards.extend(scores)
            distinct.append(len({task.canonical(p, t) for t in correct}))
    ks = [2**i for i in range(n.bit_length()) if 2**i <= n]
    out = {f"pass@{k}": v for k, v in pass_at_k_many(n_correct, n, ks).items()}
    out["mean@n"] = sum(rewards) / max(len(rewards), 1)
    out["distinct_correct"] = sum(distinct) / max(len(distinct), 1)
    return out
