"""Shared test fixtures: an isolated cache for the lab base model, a tiny lab run config, and a tiny lab
run that earns reward (``rewarded_lab_overrides``)."""

from __future__ import annotations

import os

import pytest

# Tiny lab: a 1-layer model pre-trained for a handful of steps (seconds, not the real base model).
TINY_LAB = [
    "model.lab_recipe.steps=8",
    "model.lab_recipe.batch_size=32",
    "model.lab_recipe.model={hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64}",
    "rollout.prompts_per_step=4",
    "rollout.group_size=4",
    "rollout.max_new_tokens=6",
    "eval.prompts=8",
    "eval.samples=4",
    "eval.every=2",
    "trainer.steps=4",
    "trainer.threads=1",
    "log.progress=false",
]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Lab base models built by tests go to a per-session cache (inherited by subprocesses)."""
    if "ENTROSTAT_CACHE" not in os.environ:
        os.environ["ENTROSTAT_CACHE"] = str(tmp_path_factory.mktemp("entrostat-cache"))
    yield


@pytest.fixture
def tiny_lab_overrides():
    return list(TINY_LAB)


# The tiny lab model never solves a lab prompt (its reward is always 0, so every advantage is 0 and a
# trainer test compares 0 with 0). Trainer tests whose numbers matter train on this task instead: the
# lab's prompts, rewarded by twice the share of digits in the completion, at most 1 — graded, so nearly
# every group's rewards differ; a completion at least half digits scores 1 and counts as correct.
REWARDED_TASK = "test_rewarded_lab"


def register_rewarded_lab() -> None:
    """Register ``REWARDED_TASK`` (in-process only: a subprocess of the CLI does not know it)."""
    from entrostat.tasks.base import TASKS, register_task
    from entrostat.tasks.lab import LabTask

    if REWARDED_TASK in TASKS:
        return

    @register_task(REWARDED_TASK)
    class RewardedLab(LabTask):
        name = REWARDED_TASK

        def score(self, problem, completion):
            return min(1.0, 2 * sum(ch.isdigit() for ch in completion) / max(len(completion), 1))


@pytest.fixture(scope="session")
def _rewarded_lab_checked(_isolated_cache, tmp_path_factory):
    """The rewarded tiny lab does earn reward: every step of its default run has reward std > 0 and some
    advantage ≠ 0 (checked once per session)."""
    register_rewarded_lab()
    from entrostat.config.recipes import build_config
    from entrostat.train.trainer import Trainer

    tr = Trainer(build_config(None, TINY_LAB + [f"task.name={REWARDED_TASK}"]), tmp_path_factory.mktemp("rewarded"))
    seen = []
    real_main = tr.rollouts.main

    def main(problems):
        batch = real_main(problems)
        seen.append(batch)
        return batch

    tr.rollouts.main = main
    for _ in range(tr.cfg.trainer.steps):
        tr.step()
    for step, batch in enumerate(seen):
        assert float(batch.rewards.std()) > 0, f"step {step}: every reward equal"
        assert bool((batch.advantages != 0).any()), f"step {step}: every advantage 0"
    yield


@pytest.fixture
def rewarded_lab_overrides(_rewarded_lab_checked):
    """``tiny_lab_overrides`` on the rewarded task: trainer tests see non-zero rewards and advantages."""
    return [*TINY_LAB, f"task.name={REWARDED_TASK}"]
