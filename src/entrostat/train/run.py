"""Running a whole training job: run directory, metrics, evaluation, checkpoints, resume.

A run directory is locked while a process trains in it (``rundir.RunLock``). Ctrl-C lets the
current step finish, writes a checkpoint and stops with ``TrainingInterrupted`` (a second Ctrl-C
stops at once); either way the run resumes with ``entrostat train --resume RUN``.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import yaml

from entrostat.config.base import to_dict
from entrostat.config.run import RunConfig, run_config_from
from entrostat.rundir import CONFIG_FILE, METRICS_FILE, MetricsLogger, RunLock, read_metrics
from entrostat.train.sinks import Sinks, build_sinks
from entrostat.train.trainer import Trainer


def resolve_run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.log.run_dir.format(recipe=cfg.recipe, time=time.strftime("%Y%m%d-%H%M%S")))


def train(cfg: RunConfig, run_dir: Path | None = None) -> Path:
    """Start a new run; returns its directory."""
    run_dir = Path(run_dir) if run_dir is not None else resolve_run_dir(cfg)
    if (run_dir / METRICS_FILE).exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it with `entrostat train --resume {run_dir}` "
                              "or choose another log.run_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(run_dir):
        cfg.log.run_dir = str(run_dir)
        (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return _loop(Trainer(cfg, run_dir), resumed=False)


def resume(run_dir: Path, steps: int | None = None) -> Path:
    """Continue the run in ``run_dir`` from its latest checkpoint (or from scratch if it has none)."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG_FILE}: it is not an entrostat run directory")
    cfg = run_config_from(yaml.safe_load(path.read_text()))
    if steps is not None:
        cfg.trainer.steps = steps
    with RunLock(run_dir):
        return _loop(Trainer(cfg, run_dir), resumed=True)


class TrainingInterrupted(RuntimeError):
    """Ctrl-C: the run stopped after a checkpoint of its last completed step."""


class _StopOnSigint:
    """Within the block, the first SIGINT asks the loop to stop after the current step; a second one
    raises KeyboardInterrupt at once. Outside the main thread it does nothing."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_StopOnSigint":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _loop(trainer: Trainer, resumed: bool) -> Path:
    with _StopOnSigint() as stop, build_sinks(trainer.cfg.log, trainer.run_dir, to_dict(trainer.cfg)) as sinks:
        return _run_steps(trainer, resumed, stop, sinks)


def _run_steps(trainer: Trainer, resumed: bool, stop: _StopOnSigint, sinks: Sinks) -> Path:
    cfg, run_dir = trainer.cfg, trainer.run_dir
    logger = sinks.tee(MetricsLogger(run_dir / METRICS_FILE))  # TensorBoard / W&B get the same records
    if resumed and trainer.restore_latest():
        logger.truncate_after(trainer.step_idx)
    elif resumed:
        logger.truncate_after(-1)
    if trainer.step_idx == 0 and cfg.eval.every:
        logger.log({"step": 0, **trainer.evaluate()})
    bar = _progress(cfg, trainer.step_idx)
    while trainer.step_idx < cfg.trainer.steps:
        record = trainer.step()
        k = trainer.step_idx
        if cfg.eval.every and (k % cfg.eval.every == 0 or k == cfg.trainer.steps):
            record.update(trainer.evaluate())
        logger.log(record)
        if cfg.log.checkpoint_every and (k % cfg.log.checkpoint_every == 0 or k == cfg.trainer.steps):
            trainer.save()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(_postfix(record), refresh=False)
        if stop.requested and k < cfg.trainer.steps:
            if bar is not None:
                bar.close()
            trainer.save()
            raise TrainingInterrupted(f"interrupted after step {k} of {cfg.trainer.steps}; a checkpoint of it is "
                                      f"saved: continue with `entrostat train --resume {run_dir}`")
    if bar is not None:
        bar.close()
    return run_dir


def _progress(cfg: RunConfig, start: int):
    if not cfg.log.progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.trainer.steps, initial=start, desc=f"train {cfg.recipe}", unit="step", dynamic_ncols=True)


def _postfix(r: dict) -> dict[str, str]:
    out = {"H": f"{r['entropy']:.3f}", "R": f"{r['reward_mean']:.3f}", "clip": f"{r.get('clip_frac_low', 0) + r.get('clip_frac_high', 0):.3f}"}
    if "eval/pass@1" in r:
        out["p@1"] = f"{r['eval/pass@1']:.3f}"
    return out


def run_summary(run_dir: Path) -> str:
    """A few lines on a finished run: start → end entropy, reward and held-out pass@1, steps, wall time,
    tokens/s, and the command that draws it."""
    rows = read_metrics(Path(run_dir) / METRICS_FILE)
    steps = [r for r in rows if "entropy" in r]
    if not steps:
        return f"run directory: {run_dir}"
    evals = [r for r in rows if "eval/pass@1" in r]

    def first_last(key: str, records: list[dict]) -> str:
        vals = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        return f"{vals[0]:.3f} → {vals[-1]:.3f}" if vals else "n/a"

    wall = sum(r.get("time/step", 0.0) for r in steps)
    tokens = sum(r.get("throughput/tokens_per_s", 0.0) * r.get("time/step", 0.0) for r in steps)
    lines = [
        f"steps {steps[-1]['step']}: entropy {first_last('entropy', steps)}, reward {first_last('reward_mean', steps)}, "
        f"held-out pass@1 {first_last('eval/pass@1', evals)}",
        f"wall time {_duration(wall)} in steps, {tokens / wall if wall > 0 else math.nan:.1f} completion tokens/s",
        f"run directory: {run_dir}",
        f"draw it: entrostat report {run_dir} -o {Path(run_dir) / 'report.html'}",
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{seconds:.1f} s"
