"""Experiments made of training runs: entropy trajectories of schedules and of controllers at targets."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from entrostat.config.base import to_dict
from entrostat.control.metrics import tracking_metrics
from entrostat.control.targets import build_target
from entrostat.models.loading import load_policy
from entrostat.ops import masked_mean
from entrostat.config.recipes import build_config
from entrostat.rollout.batch import generate_rollout
from entrostat.tasks.base import get_task
from entrostat.config.run import lab_base_recipe
from entrostat.models.forward import completion_logprobs
from entrostat.rundir import read_metrics
from entrostat.rundir import CONFIG_FILE, METRICS_FILE
from entrostat.train.run import train


# Settings that do not change what a run computes: a finished run that differs only in these is reused.
_NOT_RESULT = ("log", "trainer.threads")


def _settings(cfg_dict: dict) -> dict:
    flat = {}
    for section, values in cfg_dict.items():
        for key, value in (values.items() if isinstance(values, dict) else [("", values)]):
            name = f"{section}.{key}" if key else section
            if section not in _NOT_RESULT and name not in _NOT_RESULT:
                flat[name] = value
    return flat


def _check_reusable(run_dir: Path, cfg, rows: list[dict]) -> None:
    """A finished run may stand in for ``cfg`` only if it has the same settings and all its steps."""
    saved = _settings(yaml.safe_load((run_dir / CONFIG_FILE).read_text()))
    wanted = _settings(to_dict(cfg))
    differ = sorted(k for k in saved.keys() | wanted.keys() if saved.get(k) != wanted.get(k))
    if differ:
        shown = ", ".join(f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in differ[:3])
        raise ValueError(f"{run_dir} holds a run with other settings ({shown}); "
                         "delete it or choose another --out")
    done = max((r.get("step", 0) for r in rows), default=0)
    if done < cfg.trainer.steps:
        raise ValueError(f"{run_dir} holds an unfinished run ({done} of {cfg.trainer.steps} steps); "
                         f"finish it with `entrostat train --resume {run_dir}` or delete it")


def run_group(out_dir: Path, specs: list[tuple[str, str, list[str]]], seeds: list[int], overrides: list[str],
              final_eval: bool = False) -> dict:
    """Train every (label, recipe, overrides) × seed under ``out_dir/label/seed-N``; returns
    {label: [step records of each seed]}. ``{seed}`` in a spec's overrides stands for the seed. A finished
    run with the same settings is reused; one with other settings, or unfinished, is an error (never
    silently mixed in). ``final_eval``: evaluate at the start and the last step (``eval/...`` in its record)."""
    out: dict[str, list[list[dict]]] = {}
    for label, recipe, extra in specs:
        for seed in seeds:
            per_seed = [e.replace("{seed}", str(seed)) for e in extra]
            cfg = build_config(recipe, per_seed + overrides + [f"trainer.seed={seed}", "log.checkpoint_every=0"])
            cfg.eval.every = cfg.trainer.steps if final_eval else 0
            rows = _train_or_reuse(out_dir / label / f"seed-{seed}", cfg)
            out.setdefault(label, []).append(rows)
    return out


def warm_start(run_dir: Path, seed: int, steps: int, overrides: list[str]) -> Path:
    """``run_dir``: ``steps`` steps of the ``grpo`` recipe ending in a checkpoint, for runs to start from
    (``model.init_from``), trained once and then reused like ``run_group``'s runs."""
    _train_or_reuse(run_dir, build_config("grpo", [*overrides, f"trainer.steps={steps}", f"trainer.seed={seed}",
                                                   "eval.every=0", f"log.checkpoint_every={steps}"]))
    return run_dir


def _train_or_reuse(run_dir: Path, cfg) -> list[dict]:
    """The step records of ``cfg``'s run in ``run_dir``: trained now, or a finished run with its settings."""
    reused = (run_dir / METRICS_FILE).exists()
    if not reused:
        train(cfg, run_dir)
    rows = [r for r in read_metrics(run_dir / METRICS_FILE) if "entropy" in r]
    if reused:
        _check_reusable(run_dir, cfg, rows)
    return rows


def base_entropy(seed: int, overrides: list[str] = (), prompts: int = 64, group_size: int = 8) -> float:
    """Exact token entropy of the runs' base model (the ``grpo`` recipe with ``overrides``) on its own samples at
    T = 1: the targets' unit."""
    cfg = build_config("grpo", [*overrides, f"trainer.seed={seed}"])
    model, tok, fmt = load_policy(cfg.model.name, seed=seed, progress=False, lab_recipe=lab_base_recipe(cfg))
    problems = get_task(cfg.task.name, **cfg.task.kwargs).problems("train", prompts, 424242 + seed)
    with torch.no_grad():  # not around load_policy: a first use pre-trains the lab base model
        batch = generate_rollout(model, tok, problems, format_prompt=fmt, group_size=group_size, temperature=1.0,
                                 max_new_tokens=cfg.rollout.max_new_tokens,
                                 generator=torch.Generator().manual_seed(seed))
        _, ent = completion_logprobs(model, batch)
    return float(masked_mean(ent, batch.completion_mask))


def tracking_table(runs: dict, targets: dict[str, object]) -> list[dict]:
    """tracking_metrics of each run against its label's target spec."""
    table = []
    for label, seeds in runs.items():
        target = build_target(targets[label])
        for i, rows in enumerate(seeds):
            h = [r["entropy"] for r in rows]
            t = [target(k, len(rows)) for k in range(len(rows))]
            table.append({"label": label, "run": i, **tracking_metrics(h, t)})
    return table
