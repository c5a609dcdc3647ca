"""Reward shaping: DAPO's overlong penalty and the format reward; correctness never reads the shaped reward."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from entrostat.config.base import ConfigError
from entrostat.config.recipes import build_config
from entrostat.tasks import get_task
from entrostat.tasks.config import TaskConfig
from entrostat.tasks.scoring import (
    build_task,
    correct_mask,
    overlong_buffer,
    overlong_penalty,
    score_rollout,
    shaped_rewards,
)
from entrostat.train.trainer import Trainer
from entrostat.types import RolloutBatch


def test_overlong_penalty_values_by_hand():
    # L_max = 20, L_cache = 4: free up to 16, then (16 - L) / 4 down to -1 at 20; truncated -1
    lengths = torch.tensor([0, 10, 16, 17, 18, 19, 20, 12])
    truncated = torch.tensor([False, False, False, False, False, False, False, True])
    pen = overlong_penalty(lengths, truncated, max_len=20, buffer=4)
    assert pen.tolist() == [0.0, 0.0, 0.0, -0.25, -0.5, -0.75, -1.0, -1.0]
    assert overlong_penalty(lengths, None, 20, 4)[-1] == 0.0  # without truncation flags: length only
    assert overlong_penalty(torch.tensor([5]), None, 20, 20).item() == pytest.approx(-0.25)  # L_cache = L_max
    with pytest.raises(ValueError, match="buffer"):
        overlong_penalty(lengths, None, 20, 0)


def test_shaped_reward_is_the_weighted_sum():
    r = shaped_rewards(torch.tensor([1.0, 0.0, 1.0]), torch.tensor([True, True, False]),
                       torch.tensor([0.0, -0.5, -1.0]),
                       format_weight=0.1, overlong_weight=1.0)
    assert r.tolist() == pytest.approx([1.1, -0.4, 0.0])


def test_overlong_buffer_default_and_bounds():
    assert overlong_buffer(TaskConfig(overlong_penalty=1.0), 100) == 20
    assert overlong_buffer(TaskConfig(overlong_penalty=1.0, overlong_buffer=8), 100) == 8
    with pytest.raises(ConfigError, match="exceeds rollout.max_new_tokens"):
        overlong_buffer(TaskConfig(overlong_penalty=1.0, overlong_buffer=200), 100)


def test_config_rejects_negative_weights():
    with pytest.raises(ConfigError, match="format_reward = -1.0 must be >= 0"):
        build_config(None, ["task.format_reward=-1"])


def test_format_reward_needs_a_task_format():
    from entrostat.tasks.base import register_task

    @dataclass
    class NoParams:
        """Formatless takes no parameters."""

    @register_task("test_formatless", params=NoParams)
    class Formatless:
        name = "test_formatless"

    with pytest.raises(ConfigError, match="defines no answer format"):
        build_task(TaskConfig(name="test_formatless", format_reward=0.1))


def _batch(problems, texts, lengths, truncated, width=8):
    b = len(texts)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()  # (B, T)
    z = torch.zeros(b, 1, dtype=torch.long)
    return RolloutBatch(prompt_ids=z, prompt_mask=z + 1, completion_ids=mask, completion_mask=mask,
                        group_ids=torch.zeros(b, dtype=torch.long), is_truncated=torch.tensor(truncated),
                        meta={"problems": problems, "texts": texts})


def test_score_rollout_keeps_the_verifier_apart():
    task = get_task("lab")
    (p,) = task.problems("train", 1, seed=0)
    right, wrong = p.answer.solutions[0], "not digits"
    batch = _batch([p] * 3, [right, right, wrong], lengths=[2, 8, 3], truncated=[False, True, False])
    cfg = TaskConfig(format_reward=2.0, overlong_penalty=1.0, overlong_buffer=4)
    rewards, meta = score_rollout(task, batch, cfg, max_new_tokens=8)
    assert meta["verifier_rewards"] == [1.0, 1.0, 0.0]
    assert rewards.tolist() == pytest.approx([3.0, 2.0, 0.0])  # 1 + 2 format; 1 + 2 - 1 truncated; 0
    batch = batch.with_(rewards=rewards, meta={**batch.meta, **meta})
    assert correct_mask(batch).tolist() == [True, True, False]
    assert correct_mask(batch.select(torch.tensor([2, 0]))).tolist() == [False, True]
    assert meta["shaping"]["reward/format_rate"] == pytest.approx(2 / 3)
    plain, plain_meta = score_rollout(task, batch, TaskConfig(), max_new_tokens=8)
    assert plain.tolist() == [1.0, 1.0, 0.0] and "shaping" not in plain_meta


def test_training_step_pass_rate_ignores_shaping(tmp_path, tiny_lab_overrides):
    """A format reward of 5 on every completion lifts every reward above 1; the pass rate must not move."""
    from entrostat.tasks.base import TASKS, register_task
    from entrostat.tasks.lab import LabTask

    if "test_all_formatted_lab" not in TASKS:
        @register_task("test_all_formatted_lab")
        class AllFormatted(LabTask):
            def follows_format(self, problem, completion):
                return True

    over = tiny_lab_overrides + ["task.name=test_all_formatted_lab", "task.format_reward=5.0",
                                 "task.overlong_penalty=1.0", "task.overlong_buffer=2"]
    rec = Trainer(build_config(None, over), tmp_path).step()
    assert rec["reward/format_rate"] == 1.0 and rec["reward_mean"] >= 4.0
    assert rec["pass_rate"] == pytest.approx(rec["reward/verifier_mean"])  # lab rewards are 0/1
    assert rec["pass_rate"] < 1.0
    expected = rec["reward/verifier_mean"] + 5.0 + rec["reward/overlong_penalty_mean"]
    assert rec["reward_mean"] == pytest.approx(expected, abs=1e-5)
