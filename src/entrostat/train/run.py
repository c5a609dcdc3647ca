"""Running a whole training job: run directory, metrics, evaluation, checkpoints, resume."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from entrostat.config.base import to_dict
from entrostat.config.run import RunConfig, run_config_from
from entrostat.rundir import CONFIG_FILE, METRICS_FILE, MetricsLogger
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
    return _loop(Trainer(cfg, run_dir), resumed=True)


def _loop(trainer: Trainer, resumed: bool) -> Path:
    cfg, run_dir = trainer.cfg, trainer.run_dir
    logger = MetricsLogger(run_dir / METRICS_FILE)
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
