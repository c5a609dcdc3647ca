"""Shared test fixtures: an isolated cache for the lab base model and a tiny lab run config."""

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
