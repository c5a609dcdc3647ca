"""A run as a user drives it: one process per run directory, Ctrl-C saves and says how to go on, a summary at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from entrostat.cli import main
from entrostat.rundir import TIMING_PREFIXES, RunDirLocked, RunLock, list_checkpoints, read_metrics


def _rows(run_dir):
    return [{k: v for k, v in r.items() if not k.startswith(TIMING_PREFIXES)} for r in read_metrics(run_dir / "metrics.jsonl")]


def test_a_locked_run_directory_is_refused(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny_lab_overrides, "trainer.steps=1", "--run-dir", str(run)]) == 0
    with RunLock(run):
        with pytest.raises(RunDirLocked, match=f"pid {os.getpid()}"):
            RunLock(run).__enter__()
        assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "in use by another entrostat process" in err[0]
    with RunLock(run):  # released on exit: taken again
        pass


def test_the_run_ends_with_a_summary(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny_lab_overrides, "trainer.steps=2", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "steps 2: entropy " in out and "held-out pass@1 " in out and "completion tokens/s" in out
    assert f"entrostat report {run}" in out


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path, tiny_lab_overrides):
    over = [*tiny_lab_overrides, "trainer.steps=6", "log.checkpoint_every=100", "eval.every=0"]
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert main(["train", *over, "--run-dir", str(full)]) == 0
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "entrostat.cli", "train", *over, "--run-dir", str(cut)],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not ((cut / "metrics.jsonl").exists() and (cut / "metrics.jsonl").read_text()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and f"entrostat train --resume {cut}" in err
    steps = [r["step"] for r in read_metrics(cut / "metrics.jsonl")]
    assert steps and steps[-1] < 6 and [c.name for c in list_checkpoints(cut / "checkpoints")] == [
        f"step-{steps[-1]:08d}"]
    assert main(["train", "--resume", str(cut)]) == 0
    assert json.dumps(_rows(cut)) == json.dumps(_rows(full))
