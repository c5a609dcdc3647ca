"""maj@n: majority vote over the n sampled answers of each prompt (ALGORITHMS.md §4).

Self-consistency (Wang et al. 2022, arXiv 2203.11171): sample n answers, take the
most frequent one. Answers are compared through the task's canonical form
(``task.canonical(problem, completion)``, e.g. "5+8" for "8+5"); a sample whose
canonical form is None (unparseable, not comparable) takes no part in the vote.

Decisions (ours; the papers do not pin them down):
- Ties go to the tied answer whose first sample comes earliest in sample order.
  The n samples of a prompt are i.i.d., so every order of them is equally likely
  and this is exactly a uniform random tie-break, made deterministic by the
  sampler's seed.
- The majority answer is correct when its first sample was scored correct (for
  a task whose verdict depends only on the canonical answer, any of its samples
  gives the same verdict).
- A prompt with no comparable answer at all counts as wrong; maj@n is None (not
  reported) when no sample of any prompt had a comparable answer.
"""

from __future__ import annotations

from typing import Hashable, Sequence


def majority_index(answers: Sequence[Hashable | None]) -> int | None:
    """Index of the first sample of the most frequent non-None answer (ties: earliest first sample); None if none."""
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        counts[a] = counts.get(a, 0) + 1
        first.setdefault(a, i)
    if not counts:
        return None
    best = max(counts, key=lambda a: (counts[a], -first[a]))
    return first[best]


def maj_at_n(answers: Sequence[Sequence[Hashable | None]], correct: Sequence[Sequence[bool]]) -> float | None:
    """Fraction of prompts whose majority answer is correct.

    ``answers[j]`` are prompt j's canonical answers (None: not comparable) and
    ``correct[j]`` whether each sample was scored correct, in sample order.
    Returns None when no sample of any prompt has a comparable answer.
    """
    if len(answers) != len(correct):
        raise ValueError(f"maj_at_n: {len(answers)} prompts of answers but {len(correct)} of correctness flags")
    if not answers:
        raise ValueError("maj_at_n: no prompts; need at least one")
    wins, comparable = 0, False
    for j, (ans, ok) in enumerate(zip(answers, correct)):
        if len(ans) != len(ok):
            raise ValueError(f"maj_at_n: prompt {j} has {len(ans)} answers but {len(ok)} correctness flags")
        i = majority_index(ans)
        if i is not None:
            comparable = True
            wins += bool(ok[i])
    return wins / len(answers) if comparable else None
