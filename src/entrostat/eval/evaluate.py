"""Held-out evaluation: n samples per prompt → unbiased pass@k, mean@n, maj@n, distinct correct answers.

``sample_prompts`` draws the samples through a rollout backend's sampler
(``rollout.backends``; by default the HF one, ``rollout.hf.sample_groups``: one
prefill per prompt, finished rows leave the batch) and scores them; ``summarize``
turns the per-prompt results into the numbers; ``evaluate`` does both. The trainer's
periodic evaluation and ``entrostat eval`` both call ``evaluate``.

Scoring calls the task once per distinct (prompt, completion) pair: with n in the
thousands most completions of a prompt repeat, and the task's ``score`` and
``canonical`` are functions of the completion text (the Task protocol), so this
gives the same numbers as scoring every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Hashable, Sequence

import torch

from entrostat.eval.majority import maj_at_n
from entrostat.eval.passk import default_ks, pass_at_k_many
from entrostat.rollout.batch import decode_completions
from entrostat.rollout.backends import HF_SAMPLER, Sampler
from entrostat.rollout.hf import tokenize_prompts
from entrostat.tasks.base import Problem, Task


@dataclass
class PromptSamples:
    """The n samples of one prompt, in sample order: rewards and canonical answers (None: not comparable)."""

    problem_id: str
    rewards: list[float] = field(default_factory=list)
    answers: list[Hashable | None] = field(default_factory=list)

    @property
    def correct(self) -> list[bool]:
        """Sample j is correct when its reward is at least 1 (the verifiable-reward convention)."""
        return [r >= 1.0 for r in self.rewards]

    @property
    def n_correct(self) -> int:
        return sum(self.correct)


@torch.no_grad()
def sample_prompts(
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
    top_p: float = 1.0,
    batch_rows: int = 1024,
    progress: bool = False,
    sampler: Sampler = HF_SAMPLER,
) -> list[PromptSamples]:
    """``n`` scored samples of each problem, drawn ``batch_rows`` rows per ``sampler.sample_groups`` call.

    Sampling uses its own generator seeded with ``seed``, so an evaluation never
    moves the training random streams; the draws depend on ``seed`` and
    ``batch_rows``. A call holds ⌊batch_rows / n⌋ prompts × n samples, or, when
    n > batch_rows, one prompt × at most batch_rows samples. ``sampler``: a rollout
    backend's (``rollout.backends.build_backend``); one holding its own weights (vLLM)
    must be synced with ``model`` by the caller.
    """
    if n < 1 or batch_rows < 1:
        raise ValueError(f"need n >= 1 and batch_rows >= 1, got n={n}, batch_rows={batch_rows}")
    gen = torch.Generator().manual_seed(seed)
    per_call = min(n, batch_rows)  # samples of one prompt per sampler call
    prompts_per_call = max(1, batch_rows // per_call)
    results = [PromptSamples(p.id) for p in problems]
    bar = _progress_bar(len(problems) * n, progress)
    try:
        for s in range(0, len(problems), prompts_per_call):
            chunk = problems[s : s + prompts_per_call]
            prompt_ids, prompt_mask = tokenize_prompts(tokenizer, [format_prompt(p) for p in chunk])
            for done in range(0, n, per_call):
                g = min(per_call, n - done)
                ids, mask, _, _ = sampler.sample_groups(
                    model, prompt_ids, prompt_mask, group_size=g, temperature=temperature, top_p=top_p,
                    max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id, generator=gen,
                )
                _score_into(results[s : s + len(chunk)], task, chunk, tokenizer, ids, mask, g)
                if bar is not None:
                    bar.update(g * len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return results


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="eval sampling", unit="sample", unit_scale=True, dynamic_ncols=True)


def _score_into(out: list[PromptSamples], task: Task, chunk: Sequence[Problem], tokenizer,
                ids: torch.Tensor, mask: torch.Tensor, g: int) -> None:
    """Score rows (len(chunk)·g, T) of completions (prompt-major) once per distinct (prompt, completion)."""
    prompt_of_row = torch.arange(len(chunk)).repeat_interleave(g)  # (B,)
    keyed = torch.cat([prompt_of_row[:, None], ids.masked_fill(mask == 0, -1)], dim=1)  # (B, 1 + T)
    uniq, inverse = torch.unique(keyed, dim=0, return_inverse=True)  # (U, 1 + T), (B,)
    texts = decode_completions(tokenizer, uniq[:, 1:].clamp(min=0), uniq[:, 1:] >= 0)
    canonical = getattr(task, "canonical", None)
    scored = []
    for (j, *_), text in zip(uniq.tolist(), texts):
        p = chunk[j]
        scored.append((float(task.score(p, text)), canonical(p, text) if canonical is not None else None))
    for row, u in enumerate(inverse.tolist()):
        reward, answer = scored[u]
        res = out[row // g]
        res.rewards.append(reward)
        res.answers.append(answer)


def summarize(results: Sequence[PromptSamples], n: int, ks: Sequence[int] | None = None) -> dict[str, float]:
    """pass@k for each k (default 1, 2, 4, … ≤ n), mean@n (mean reward), maj@n (where answers are
    comparable) and distinct_correct (mean number of distinct correct canonical answers per prompt)."""
    if not results:
        raise ValueError("summarize: no prompts were evaluated")
    for r in results:
        if len(r.rewards) != n:
            raise ValueError(f"summarize: prompt {r.problem_id!r} has {len(r.rewards)} samples, expected n = {n}")
    ks = default_ks(n) if ks is None else list(ks)
    out = {f"pass@{k}": v for k, v in pass_at_k_many([r.n_correct for r in results], n, ks).items()}
    out["mean@n"] = sum(sum(r.rewards) for r in results) / (n * len(results))
    maj = maj_at_n([r.answers for r in results], [r.correct for r in results])
    if maj is not None:
        out["maj@n"] = maj
    distinct = [len({a for a, ok in zip(r.answers, r.correct) if ok}) for r in results]
    out["distinct_correct"] = sum(distinct) / len(distinct)
    return out


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
    ks: Sequence[int] | None = None,
    top_p: float = 1.0,
    batch_rows: int = 1024,
    progress: bool = False,
    sampler: Sampler = HF_SAMPLER,
) -> dict[str, float]:
    """``summarize(sample_prompts(...))``: the evaluation numbers of ``problems`` at these sampling settings.

    The settings (n, temperature, top_p, max_new_tokens) belong with the numbers
    wherever they are reported. ``sampler``: as in ``sample_prompts``.
    """
    results = sample_prompts(
        model, tokenizer, task, problems, format_prompt=format_prompt, n=n, temperature=temperature,
        max_new_tokens=max_new_tokens, seed=seed, top_p=top_p, batch_rows=batch_rows, progress=progress,
        sampler=sampler,
    )
    return summarize(results, n, ks)
