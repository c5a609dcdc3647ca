"""Synthetic run directories: metrics.jsonl (and config.yaml) written directly, no training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


def synthetic_records(steps: int = 30, eval_every: int = 10, target: float | None = None) -> list[dict]:
    """Entropy 2 − 0.02k, reward 0.01k, lr 0.1, covariance 0.05; evaluations at 0 and every ``eval_every``."""
    recs = [{"step": 0, "eval/pass@1": 0.1, "eval/pass@2": 0.2, "eval/pass@4": 0.3}]
    for k in range(1, steps + 1):
        r = {"step": k, "entropy": 2.0 - 0.02 * k, "reward_mean": 0.01 * k, "response_length": 4.0 + k % 3,
             "covariance": 0.05, "lr": 0.1, "time/step": 0.5}
        if target is not None:
            r.update({"control/entropy_coef": 0.001 * k, "control/thermostat/target": target,
                      "control/thermostat/error": target - r["entropy"]})
        if k % eval_every == 0:
            r.update({"eval/pass@1": 0.1 + 0.01 * k, "eval/pass@2": 0.2 + 0.01 * k, "eval/pass@4": 0.3 + 0.01 * k})
        recs.append(r)
    return recs


def write_run(path: Path, records: list[dict], recipe: str = "grpo", seed: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"recipe": recipe, "trainer": {"seed": seed}}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def records():
    """``synthetic_records`` (a fixture: test modules do not import conftest)."""
    return synthetic_records


@pytest.fixture
def make_run(tmp_path):
    def make(name: str, records: list[dict] | None = None, **kw) -> Path:
        return write_run(tmp_path / name, records if records is not None else synthetic_records(), **kw)

    return make
