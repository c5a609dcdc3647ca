"""Kill a training process at a random step, resume it, and compare with an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrostat.rundir import TIMING_PREFIXES
from entrostat.train.checkpoint import CHECKPOINT_FILES, MANIFEST_FILE

STEPS = 8


def _cmd(run_dir: Path, overrides: list[str]) -> list[str]:
    return [sys.executable, "-m", "entrostat.cli", "train", *overrides, f"trainer.steps={STEPS}",
            "log.checkpoint_every=1", "eval.every=3", "loss.selection=clip_cov", "loss.clip_cov_lb=-100",
            "loss.clip_cov_ub=100", "loss.clip_cov_ratio=0.1", "trainer.mini_batches=2", "trainer.epochs=2",
            # a closed-loop controller whose state must survive the checkpoint (H* below ln V: above it is refused)
            "control.name=thermostat", "control.kwargs={actuator: eps_high, target: 3.5, ki: 0.002}",
            "--run-dir", str(run_dir)]


def _records(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [{k: v for k, v in r.items() if not k.startswith(TIMING_PREFIXES)} for r in rows]


def _steps_logged(path: Path) -> int:
    if not path.exists():
        return -1
    return sum(1 for line in path.read_text().splitlines() if line.strip()) - 1  # minus the step-0 eval line


def _assert_only_complete_checkpoints(run_dir: Path) -> None:
    for p in (run_dir / "checkpoints").iterdir():
        if p.name.startswith("step-"):
            assert all((p / name).is_file() for name in (*CHECKPOINT_FILES, MANIFEST_FILE)), p


@pytest.mark.slow
def test_killed_and_resumed_run_matches_uninterrupted(tmp_path, tiny_lab_overrides):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    full = tmp_path / "full"
    subprocess.run(_cmd(full, tiny_lab_overrides), check=True, env=env, capture_output=True)

    cut = tmp_path / "cut"
    kill_at = random.Random().randint(1, STEPS - 2)
    proc = subprocess.Popen(_cmd(cut, tiny_lab_overrides), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _steps_logged(cut / "metrics.jsonl") < kill_at and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _steps_logged(cut / "metrics.jsonl") < STEPS, "the run finished before it could be killed"
    _assert_only_complete_checkpoints(cut)

    subprocess.run([sys.executable, "-m", "entrostat.cli", "train", "--resume", str(cut)],
                   check=True, env=env, capture_output=True)
    records = _records(cut)
    assert records == _records(full), f"killed after step {kill_at}"
    integrals = [r["control/thermostat/integral"] for r in records if "control/thermostat/integral" in r]
    assert len(set(integrals)) > 2  # the controller state really evolved across the cut
    _assert_only_complete_checkpoints(cut)
    assert not [p for p in (cut / "checkpoints").iterdir() if p.name.startswith(".tmp")]
