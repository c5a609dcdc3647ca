"""kill -9 at random points, resume, and end exactly where an uninterrupted run ends; --extend-to.

A run is killed five times — once before its first checkpoint, once while a checkpoint is being written,
three times at random steps — and resumed after each kill; the last resume finishes it. Its metrics
(every field but the wall-clock ones, ``rundir.TIMING_PREFIXES``) are bit-identical to an uninterrupted
run's, with every step once, and its final weights are byte-identical.

The processes are forked from one helper that has imported entrostat, torch and transformers already (a
"zygote"), so that each of the seven runs does not pay the imports again: each is still a whole process
of its own, killed with SIGKILL, and only what it left on disk carries over.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from entrostat.cli import main
from entrostat.control import build_target
from entrostat.rundir import (
    CHECKPOINT_FILES,
    CHECKPOINT_PREFIX,
    CONFIG_FILE,
    MANIFEST_FILE,
    TIMING_PREFIXES,
    WEIGHTS_FILE,
    checkpoint_name,
    checkpoints_dir,
    list_checkpoints,
    read_metrics,
)

STEPS = 12
RUN = [f"trainer.steps={STEPS}", "log.checkpoint_every=1", "eval.every=3", "trainer.mini_batches=2",
       "trainer.epochs=2", "loss.selection=clip_cov", "loss.clip_cov_lb=-100", "loss.clip_cov_ub=100",
       "loss.clip_cov_ratio=0.1",
       # a closed-loop controller whose state must survive every cut (the tiny lab's entropy ≈ 3.92 > 3.5)
       "control.name=thermostat", "control.kwargs={actuator: eps_high, target: 3.5, ki: 0.002}"]

ZYGOTE = textwrap.dedent("""
    import json, os, sys, traceback
    import entrostat.cli, entrostat.train.trainer, transformers.models.llama.modeling_llama  # paid once, here
    for line in sys.stdin:
        argv, log = json.loads(line)
        pid = os.fork()
        if pid == 0:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            try:
                rc = entrostat.cli.main(argv)
            except BaseException:
                traceback.print_exc()
                rc = 1
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc or 0)
        print(pid, flush=True)
""")


class Zygote:
    """Starts ``entrostat train`` processes forked from a helper that has done the imports."""

    def __init__(self, tmp_path: Path):
        self.tmp_path, self.count = tmp_path, 0
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONWARNINGS": "ignore"}
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def start(self, argv: list[str]) -> tuple[int, Path]:
        self.count += 1
        log = self.tmp_path / f"process-{self.count}.log"
        self.proc.stdin.write(json.dumps([["train", *argv], str(log)]) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline()), log

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def running(pid: int) -> bool:
    """Whether the forked process still runs (a finished one is a zombie until the helper exits)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def kill_when(pid: int, ready, timeout: float = 120.0, poll: float = 0.002) -> bool:
    """SIGKILL ``pid`` as soon as ``ready()``; False when the process ended (or time ran out) first."""
    deadline = time.time() + timeout
    while running(pid) and time.time() < deadline:
        if ready():
            os.kill(pid, signal.SIGKILL)
            while running(pid):
                time.sleep(0.001)
            return True
        if poll:
            time.sleep(poll)
    return False


def last_step(run: Path) -> int:
    path = run / "metrics.jsonl"
    if not path.exists():
        return -1
    steps = [r["step"] for r in read_metrics(path)]
    return steps[-1] if steps else -1


def writing_checkpoint(run: Path, pid: int) -> bool:
    """Whether process ``pid`` is writing a checkpoint (its temporary directory is there; a killed process's
    leftover has another pid)."""
    try:
        return any(name.startswith(f".tmp-{CHECKPOINT_PREFIX}") and name.endswith(f"-{pid}")
                   for name in os.listdir(checkpoints_dir(run)))
    except FileNotFoundError:
        return False


def checkpointed(run: Path) -> int:
    found = list_checkpoints(checkpoints_dir(run))
    return int(found[-1].name[len(CHECKPOINT_PREFIX):]) if found else 0


def records(run: Path) -> list[dict]:
    rows = read_metrics(run / "metrics.jsonl")
    return [{k: v for k, v in r.items() if not k.startswith(TIMING_PREFIXES)} for r in rows]


def assert_consistent(run: Path, full: list[dict], what: str) -> None:
    """After a kill: every logged step once and in order, each record equal to the uninterrupted run's, and only
    complete checkpoints."""
    rows = records(run) if (run / "metrics.jsonl").exists() else []
    assert [r["step"] for r in rows] == list(range(len(rows))), what
    assert rows == full[: len(rows)], what
    for p in list_checkpoints(checkpoints_dir(run)):
        assert all((p / name).is_file() for name in (*CHECKPOINT_FILES, MANIFEST_FILE)), (what, p)


@pytest.mark.slow
def test_five_kills_then_the_same_run(tmp_path, tiny_lab_overrides):
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    zygote = Zygote(tmp_path)
    try:
        full_dir, cut = tmp_path / "full", tmp_path / "cut"
        pid, log = zygote.start([*tiny_lab_overrides, *RUN, "--run-dir", str(full_dir)])
        assert not kill_when(pid, lambda: False, poll=0.05), log.read_text()
        full = records(full_dir)
        assert [r["step"] for r in full] == list(range(STEPS + 1)), log.read_text()

        kills: list[str] = []
        # 1: before the first checkpoint (the run directory exists, no step has finished)
        pid, log = zygote.start([*tiny_lab_overrides, *RUN, "--run-dir", str(cut)])
        delay, seen = rng.uniform(0.0, 0.5), []

        def early() -> bool:  # a random moment after the run directory appears, before the step-0 evaluation ends
            if not seen and (cut / CONFIG_FILE).exists():
                seen.append(time.time())
            return bool(seen) and (time.time() - seen[0] >= delay or (cut / "metrics.jsonl").exists())

        assert kill_when(pid, early), log.read_text()
        assert not list_checkpoints(checkpoints_dir(cut)), f"seed {seed}: the first kill came after a checkpoint"
        kills.append("before the first checkpoint")
        assert_consistent(cut, full, f"seed {seed}, {kills}")

        # 2-5: during a checkpoint write once, at random steps otherwise; each resumed process is killed
        plan = ["step", "checkpoint write", "step", "step"]
        rng.shuffle(plan)
        in_write = False
        for kind in plan:
            start = checkpointed(cut)
            pid, log = zygote.start(["--resume", str(cut)])
            if kind == "checkpoint write":
                landed = kill_when(pid, lambda: writing_checkpoint(cut, pid), poll=0)
                in_write = writing_checkpoint(cut, pid)  # killed before the rename: its temporary is left
            else:
                target, pause = start + rng.randint(1, 2), rng.uniform(0.0, 0.05)
                landed = kill_when(pid, lambda: last_step(cut) >= target and (time.sleep(pause) or True))
            assert landed, f"seed {seed}: the run ended before kill {len(kills) + 1} ({kind}): {log.read_text()}"
            kills.append(f"{kind} after step {last_step(cut)}")
            assert_consistent(cut, full, f"seed {seed}, {kills}")
        assert in_write, f"seed {seed}: the checkpoint-write kill landed after the checkpoint's rename"

        pid, log = zygote.start(["--resume", str(cut)])
        assert not kill_when(pid, lambda: False, poll=0.05), log.read_text()
    finally:
        zygote.close()
    assert records(cut) == full, f"seed {seed}, kills: {kills}"  # every step once, bit-identical
    last = checkpoint_name(STEPS)
    assert (cut / "checkpoints" / last / WEIGHTS_FILE).read_bytes() == \
        (full_dir / "checkpoints" / last / WEIGHTS_FILE).read_bytes()
    integrals = {r["control/thermostat/integral"] for r in full if "control/thermostat/integral" in r}
    assert len(integrals) > 2  # the controller's state did evolve across the cuts
    assert not [p for p in checkpoints_dir(cut).iterdir() if p.name.startswith(".tmp")]


# ---------------------------------------------------------------------------- --extend-to
SCHEDULE = {"kind": "linear", "start": 3.8, "end": 3.0}
EXTEND = ["trainer.steps=4", "log.checkpoint_every=1", "log.keep_checkpoints=10", "eval.every=0",
          "optim.schedule=linear", "optim.lr=0.01",
          "loss.entropy_coef=0.1",  # a gradient, so that the learning rate acts, although the tiny lab earns nothing
          "control.name=thermostat", "control.kwargs={actuator: eps_high, target: {kind: linear, start: 3.8, end: 3.0}}"]


def test_extend_to_rereads_the_schedules_against_the_new_total(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny_lab_overrides, *EXTEND, "--run-dir", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--extend-to", "8"]) == 0
    rows = [r for r in read_metrics(run / "metrics.jsonl") if r["step"] > 0]
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert yaml.safe_load((run / CONFIG_FILE).read_text())["trainer"]["steps"] == 8
    lr = {r["step"]: r["lr"] for r in rows}
    assert lr[4] == pytest.approx(0.01 * (1 - 3 / 4))  # the first run's schedule, over 4 steps
    assert lr[5] == pytest.approx(0.01 * (1 - 4 / 8)) and lr[8] == pytest.approx(0.01 * (1 - 7 / 8))  # not 0
    target = build_target(SCHEDULE)
    assert [r["control/thermostat/target"] for r in rows] == pytest.approx(
        [target(k, 4) for k in range(1, 5)] + [target(k, 8) for k in range(5, 9)])  # jumps to H*(5/8) at step 5
    # the extended run's checkpoints are written with the new total: a plain resume now continues it
    assert main(["train", "--resume", str(run)]) == 0


def test_extend_to_after_a_crash_between_the_rewrite_and_the_next_checkpoint(tmp_path, tiny_lab_overrides, capsys):
    run = tmp_path / "run"
    assert main(["train", *tiny_lab_overrides, *EXTEND, "--run-dir", str(run)]) == 0
    data = yaml.safe_load((run / CONFIG_FILE).read_text())
    data["trainer"]["steps"] = 8  # what --extend-to 8 writes before its first step
    (run / CONFIG_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2  # a plain resume does not take it for an extension
    assert "trainer.steps is 8 in config.yaml but 4 in the checkpoint" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--extend-to", "8"]) == 0
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl")] == list(range(1, 9))


def test_resume_checks_the_checkpoint_it_falls_back_to(tmp_path, tiny_lab_overrides, capsys):
    """The config is checked before the model loads from the newest checkpoint's state.json, and again against the
    checkpoint actually restored: here the newest (written after --extend-to 6) has damaged weights, and the one
    before it was written with trainer.steps = 4."""
    run = tmp_path / "run"
    assert main(["train", *tiny_lab_overrides, *EXTEND, "--run-dir", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--extend-to", "6"]) == 0
    shutil.rmtree(checkpoints_dir(run) / checkpoint_name(6))  # back to step 5, written with trainer.steps = 6 ...
    (checkpoints_dir(run) / checkpoint_name(5) / WEIGHTS_FILE).write_bytes(b"damaged")  # ... back to 4, written with 4
    capsys.readouterr()
    with pytest.warns(UserWarning, match="skipping damaged checkpoints: .*step-00000005.*resuming from .*step-00000004"):
        assert main(["train", "--resume", str(run)]) == 2
    assert "checkpoint step-00000004: trainer.steps is 6 in config.yaml but 4 in the checkpoint" in \
        capsys.readouterr().err
