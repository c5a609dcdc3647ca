"""Running a whole training job: run directory, metrics, evaluation, checkpoints, resume.

A run directory is locked while a process trains in it (``rundir.RunLock``). Ctrl-C lets the
current step finish, writes a checkpoint and stops with ``TrainingInterrupted`` (a second Ctrl-C
stops at once); either way the run resumes with ``entrostat train --resume RUN``.

Before the first step everything that can be refused is (``train.preflight``): the config, the
``model.init_from`` checkpoint, a writable run directory and ``checkpoints/``, then, once the model
is loaded, the entropy target against ln V. A new run that fails before its first step leaves no
run directory behind. A resumed run trains with the config its checkpoint was written with.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from pathlib import Path

import yaml

from entrostat.config.base import to_dict
from entrostat.config.run import RunConfig
from entrostat.rundir import CONFIG_FILE, METRICS_FILE, MetricsLogger, RunLock, checkpoints_dir, one_line, read_metrics
from entrostat.train import checkpoint as ckpt
from entrostat.train import preflight
from entrostat.train.sinks import Sinks, build_sinks
from entrostat.train.trainer import Trainer, TrainingError


def resolve_run_dir(cfg: RunConfig) -> Path:
    return Path(cfg.log.run_dir.format(recipe=cfg.recipe, time=time.strftime("%Y%m%d-%H%M%S")))


def train(cfg: RunConfig, run_dir: Path | None = None) -> Path:
    """Start a new run; returns its directory. Refused (ConfigError, FileExistsError, CheckpointError,
    RunDirError: one line each) before any model loads where possible; a run that fails before its first
    step leaves no run directory behind (or, in a directory that was there, only what was there)."""
    preflight.check_config(cfg)
    run_dir = Path(run_dir) if run_dir is not None else resolve_run_dir(cfg)
    if (run_dir / METRICS_FILE).exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it with `entrostat train --resume {run_dir}` "
                              "or choose another log.run_dir")
    preflight.check_init_from(cfg)
    with preflight.NewRunDir(run_dir, cfg), RunLock(run_dir):
        cfg.log.run_dir = str(run_dir).replace("{", "{{").replace("}", "}}")  # a pattern naming this directory
        (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        trainer = Trainer(cfg, run_dir)
        preflight.check_loaded(cfg, trainer.model, trainer.tokenizer)
        return _loop(trainer, None)


def resume(run_dir: Path, steps: int | None = None, *, progress: bool | None = None) -> Path:
    """Continue the run in ``run_dir`` from its latest intact checkpoint (or from scratch if it has none).

    The run's ``config.yaml`` must be the config that checkpoint was written with (the ``log`` section
    aside): a run resumed under an edited config would change its algorithm or schedules mid-run with
    nothing recorded, so a mismatch is refused naming the first differing key and both values. This is
    checked from the checkpoint's ``state.json`` before the model loads, and again on the checkpoint
    actually restored (an older one, when the newest is damaged).

    ``steps`` N (the CLI's ``--extend-to N``) lengthens the run to N steps, N > its trainer.steps:
    config.yaml is rewritten with trainer.steps = N (a config.yaml already rewritten by a process that
    died before its next checkpoint is accepted too) and the run continues. Whatever depends on the total
    is a function of step / total and is re-read against N from the resumed step k on: the learning rate
    of every later optimizer step is the schedule's at k of N (a linear or cosine decay that had reached
    0 at the old end jumps back up to its value at k/N; a constant one is unchanged), and an entropy
    target schedule jumps to H*(k/N) from the first controller update after the resume (the first resumed
    step still uses the actuator value computed at the checkpoint). ``progress`` overrides log.progress.
    """
    run_dir = Path(run_dir)
    cfg = preflight.read_run_config(run_dir)
    if progress is not None:
        cfg.log.progress = progress
    with RunLock(run_dir):
        plan = preflight.ResumePlan.make(run_dir, cfg, steps)
        preflight.check_writable(run_dir)
        if cfg.log.checkpoint_every and checkpoints_dir(run_dir).exists():
            preflight.check_writable(checkpoints_dir(run_dir))
        trainer = Trainer(cfg, run_dir)
        preflight.check_loaded(cfg, trainer.model, trainer.tokenizer)
        return _loop(trainer, plan)


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


def _loop(trainer: Trainer, plan: preflight.ResumePlan | None) -> Path:
    """Run the steps; ``plan``: resume (None: a new run)."""
    if plan is not None:
        _restore(trainer, plan)
    with _StopOnSigint() as stop, build_sinks(trainer.cfg.log, trainer.run_dir, to_dict(trainer.cfg)) as sinks:
        return _run_steps(trainer, plan is not None, stop, sinks)


def _restore(trainer: Trainer, plan: preflight.ResumePlan) -> None:
    """Load the latest intact checkpoint, after checking the config it was written with; with --extend-to,
    rewrite config.yaml and re-read the learning-rate schedule against the new total."""
    found = ckpt.restore_latest(checkpoints_dir(trainer.run_dir), trainer.model)
    if found is not None:
        path, state = found
        plan.check(path, state.get("config"))
        trainer.load_state_dict(state)
    if plan.extend_to is not None:
        plan.write()
        _reread_schedule(trainer)


def _reread_schedule(trainer: Trainer) -> None:
    """Set each parameter group's learning rate from the schedule at the restored optimizer step: the optimizer's
    saved state holds the rate the old total gave (0 at the end of a linear decay). For an unchanged total this
    is the saved value."""
    sched = trainer.updater.scheduler
    for group, base, factor in zip(sched.optimizer.param_groups, sched.base_lrs, sched.lr_lambdas):
        group["lr"] = base * factor(sched.last_epoch)
    sched._last_lr = [group["lr"] for group in sched.optimizer.param_groups]


def _run_steps(trainer: Trainer, resumed: bool, stop: _StopOnSigint, sinks: Sinks) -> Path:
    cfg, run_dir = trainer.cfg, trainer.run_dir
    logger = sinks.tee(MetricsLogger(run_dir / METRICS_FILE))  # TensorBoard / W&B get the same records
    if resumed:  # records past the restored step go; with no checkpoint (step 0) the run starts again
        logger.truncate_after(trainer.step_idx if trainer.step_idx > 0 else -1)
    if trainer.step_idx == 0 and cfg.eval.every:
        logger.log({"step": 0, **trainer.evaluate()})
    bar = _progress(cfg, trainer.step_idx)
    while trainer.step_idx < cfg.trainer.steps:
        record = _step(trainer)
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


def _step(trainer: Trainer) -> dict[str, float]:
    """One step; a step that fails on weights that have blown up (finite but huge ones make non-finite logits,
    and the sampler then fails far from the cause) is reported as that, with the fix."""
    try:
        return trainer.step()
    except Exception as exc:
        if isinstance(exc, TrainingError):
            raise
        cause = preflight.diverged(trainer.model, trainer.tokenizer)
        if cause is None:
            raise
        raise TrainingError(
            f"step {trainer.step_idx + 1} failed ({one_line(exc)}) because training diverged: {cause} at optim.lr = "
            f"{trainer.cfg.optim.lr:g}; lower optim.lr and start a new run (model.init_from={trainer.run_dir} "
            "starts it from the last checkpoint's weights)"
        ) from exc


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
