"""Rewards of a rollout: the task's verifier (with a policy for verifiers that raise), then optional shaping.

``build_task`` makes the run's task from ``TaskConfig`` (a custom ``task.reward``
replaces the task's verifier). ``score_rollout`` scores a rollout batch: the
verifier's rewards, plus ``format_reward`` for completions in the task's answer
format, plus ``overlong_penalty`` times DAPO's soft overlong punishment
(arXiv 2503.14476, eq. 13). The shaped reward is the training signal only: the
verifier's rewards travel in ``meta["verifier_rewards"]`` and ``correct_mask``
reads correctness from them (pass rate, positives); held-out evaluation calls
the task directly and never sees the shaping.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence

import torch

from entrostat.config.base import ConfigError
from entrostat.tasks.base import Problem, Task, get_task
from entrostat.tasks.config import TaskConfig
from entrostat.types import RolloutBatch


class RewardError(RuntimeError):
    """A reward function raised (or returned a non-number, or ran out of time) and the run is configured to fail,
    or it failed on most completions of a batch."""


MAX_FAILED_SHARE = 0.5  # with reward_errors=zero: more of a batch failing than this stops the run


def build_task(cfg: TaskConfig, max_new_tokens: int | None = None) -> Task:
    """The task of ``cfg`` (custom reward applied); with ``max_new_tokens``, also checks the shaping settings."""
    task = get_task(cfg.name, **cfg.kwargs)
    if cfg.reward:
        from entrostat.tasks.custom_reward import CustomRewardTask, load_reward

        task = CustomRewardTask(task, load_reward(cfg.reward), cfg.reward, cfg.reward_timeout)
    if cfg.format_reward and not callable(getattr(task, "follows_format", None)):
        raise ConfigError(f"task.format_reward = {cfg.format_reward}: task {cfg.name!r} defines no answer format "
                          "(no follows_format method); set task.format_reward=0")
    if max_new_tokens is not None and cfg.overlong_penalty:
        overlong_buffer(cfg, max_new_tokens)
    return task


def score_completions(
    task: Task, problems: Sequence[Problem], texts: Sequence[str], on_error: str = "raise",
    max_failed_share: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Rewards (B,) float32 and the number of completions whose scoring failed.

    ``on_error='raise'``: the first failure raises RewardError naming the prompt and the
    exception. ``on_error='zero'``: a failure scores 0 and is counted; with ``max_failed_share``,
    RewardError as soon as more than that share of the batch has failed (the rest is not scored:
    a reward that times out on every call would otherwise cost the timeout B times).
    """
    rewards, errors, first = [], 0, ""
    for problem, text in zip(problems, texts):
        try:
            r = task.score(problem, text)
            if isinstance(r, bool) or not isinstance(r, numbers.Real) or not math.isfinite(r):
                raise TypeError(f"reward must be a finite number, got {r!r} ({type(r).__name__})")
        except Exception as exc:
            failure = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            if on_error != "zero":
                raise RewardError(
                    f"the reward function of task {task.name!r} failed on prompt {problem.id!r} "
                    f"({problem.prompt[:80]!r}) with completion {text[:80]!r}: {failure}. "
                    "Set task.reward_errors=zero to score such completions 0 and count them."
                ) from exc
            r, errors, first = 0.0, errors + 1, first or failure
            if max_failed_share is not None and errors > max_failed_share * len(texts):
                raise RewardError(
                    f"the reward function of task {task.name!r} failed on {errors} of the {len(rewards) + 1} "
                    f"completions scored so far of a batch of {len(texts)} (first: {first}); "
                    "task.reward_errors=zero scores an occasional failure 0, but a reward that fails on most "
                    "completions is broken and the run would train on zeros: fix the reward function"
                ) from exc
        rewards.append(float(r))
    return torch.tensor(rewards, dtype=torch.float32), errors


def overlong_penalty(lengths: torch.Tensor, truncated: torch.Tensor | None, max_len: int, buffer: int) -> torch.Tensor:
    """DAPO's soft overlong punishment (2503.14476 eq. 13), (B,) in [-1, 0].

    With L_max = ``max_len`` and L_cache = ``buffer``: 0 for L ≤ L_max − L_cache,
    ((L_max − L_cache) − L) / L_cache for L_max − L_cache < L ≤ L_max, and −1 for a
    truncated completion (no end of sequence within L_max: the paper's L > L_max).
    """
    if not 0 < buffer <= max_len:
        raise ValueError(f"need 0 < buffer <= max_len, got buffer={buffer}, max_len={max_len}")
    pen = ((max_len - buffer) - lengths.float()) / buffer  # (B,)
    pen = pen.clamp(min=-1.0, max=0.0)
    if truncated is not None:
        pen = torch.where(truncated.bool(), torch.full_like(pen, -1.0), pen)
    return pen


def shaped_rewards(verifier: torch.Tensor, follows_format: torch.Tensor, penalty: torch.Tensor,
                   format_weight: float, overlong_weight: float) -> torch.Tensor:
    """verifier + format_weight · follows_format + overlong_weight · penalty, all (B,)."""
    return verifier + format_weight * follows_format.float() + overlong_weight * penalty


def overlong_buffer(cfg: TaskConfig, max_new_tokens: int) -> int:
    """L_cache in tokens: ``cfg.overlong_buffer``, or a fifth of ``max_new_tokens`` (DAPO's 4096 of 20480) when 0."""
    buffer = cfg.overlong_buffer or max(1, max_new_tokens // 5)
    if buffer > max_new_tokens:
        raise ConfigError(f"task.overlong_buffer = {buffer} exceeds rollout.max_new_tokens = {max_new_tokens}; "
                          "the punishment interval (L_max - L_cache, L_max] must fit in the budget: choose a buffer "
                          f"<= {max_new_tokens} (0 for a fifth of it)")
    return buffer


def score_rollout(task: Task, batch: RolloutBatch, cfg: TaskConfig, max_new_tokens: int) -> tuple[torch.Tensor, dict]:
    """(training rewards (B,), meta entries) of a rollout whose ``meta`` has ``problems`` and ``texts``.

    With ``task.reward_errors=zero``, failed completions score 0 with a warning, and RewardError stops the run
    when more than ``MAX_FAILED_SHARE`` of the rollout fails (a broken reward; the run would train on zeros).
    Meta: ``reward_errors`` (count), ``verifier_rewards`` (list of floats: the task's scores,
    what correctness is read from) and, with shaping on, ``shaping`` (a dict of batch means).
    """
    problems, texts = batch.meta["problems"], batch.meta["texts"]
    verifier, errors = score_completions(task, problems, texts, cfg.reward_errors, max_failed_share=MAX_FAILED_SHARE)
    if errors:
        warnings.warn(f"the reward function of task {task.name!r} failed on {errors} of {len(texts)} completions of "
                      "this rollout, scored 0 (task.reward_errors=zero); more than half failing stops the run",
                      RuntimeWarning, stacklevel=2)
    meta = {"reward_errors": errors, "verifier_rewards": verifier.tolist()}
    if not (cfg.format_reward or cfg.overlong_penalty):
        return verifier, meta
    fmt = torch.tensor([_follows(task, p, t) for p, t in zip(problems, texts)]) if cfg.format_reward \
        else torch.zeros(len(texts), dtype=torch.bool)
    pen = torch.zeros_like(verifier)
    if cfg.overlong_penalty:
        lengths = batch.completion_mask.sum(-1)  # (B,)
        pen = overlong_penalty(lengths, batch.is_truncated, max_new_tokens, overlong_buffer(cfg, max_new_tokens))
    rewards = shaped_rewards(verifier, fmt, pen, cfg.format_reward, cfg.overlong_penalty)
    meta["shaping"] = {"reward/verifier_mean": float(verifier.mean()), "reward/format_rate": float(fmt.float().mean()),
                       "reward/overlong_penalty_mean": float(pen.mean())}
    return rewards, meta


def _follows(task: Task, problem: Problem, text: str) -> bool:
    try:
        return bool(task.follows_format(problem, text))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a format check that fails means: not in format
        return False


def correct_mask(batch: RolloutBatch) -> torch.Tensor:
    """(B,) bool: the verifier's reward is at least 1 (shaping never counts); from ``meta["verifier_rewards"]``
    when the batch carries it, else from ``rewards``."""
    verifier = batch.meta.get("verifier_rewards")
    if verifier is None or len(verifier) != batch.batch_size:
        return batch.rewards >= 1.0
    return torch.tensor(verifier, dtype=torch.float32, device=batch.rewards.device) >= 1.0
