"""Scoring completions with the task's verifier, with a policy for verifiers that raise."""

from __future__ import annotations

import math
from typing import Sequence

import torch

from entrostat.tasks.base import Problem, Task


class RewardError(RuntimeError):
    """A reward function raised (or returned a non-number) and the run is configured to fail."""


def score_completions(
    task: Task, problems: Sequence[Problem], texts: Sequence[str], on_error: str = "raise"
) -> tuple[torch.Tensor, int]:
    """Rewards (B,) float32 and the number of completions whose scoring failed.

    ``on_error='raise'``: the first failure raises RewardError naming the prompt and the
    exception. ``on_error='zero'``: a failure scores 0 and is counted.
    """
    rewards, errors = [], 0
    for problem, text in zip(problems, texts):
        try:
            r = task.score(problem, text)
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
                raise TypeError(f"reward must be a finite number, got {r!r} ({type(r).__name__})")
        except Exception as exc:  # noqa: BLE001 - user code: anything may be raised
            if on_error != "zero":
                raise RewardError(
                    f"the reward function of task {task.name!r} failed on prompt {problem.id!r} "
                    f"({problem.prompt[:80]!r}) with completion {text[:80]!r}: {type(exc).__name__}: {exc}. "
                    "Set task.reward_errors=zero to score such completions 0 and count them."
                ) from exc
            r, errors = 0.0, errors + 1
        rewards.append(float(r))
    return torch.tensor(rewards, dtype=torch.float32), errors
