"""Experiments made of training runs: entropy trajectories of schedules and of controllers at targets."""

from __future__ import annotations

from pathlib import Path

import torch

from entrostat.control.metrics import tracking_metrics
from entrostat.control.targets import build_target
from entrostat.models.loading import load_policy
from entrostat.ops import masked_mean
from entrostat.recipes import build_config
from entrostat.rollout.batch import generate_rollout
from entrostat.tasks.base import get_task
from entrostat.train.forward import completion_logprobs
from entrostat.train.metrics import read_metrics
from entrostat.train.run import METRICS_FILE, train


def run_group(out_dir: Path, specs: list[tuple[str, str, list[str]]], seeds: list[int], overrides: list[str]) -> dict:
    """Train every (label, recipe, overrides) × seed under ``out_dir/label/seed-N``; returns
    {label: [step records of each seed]} (existing finished runs are reused)."""
    out: dict[str, list[list[dict]]] = {}
    for label, recipe, extra in specs:
        for seed in seeds:
            run_dir = out_dir / label / f"seed-{seed}"
            if not (run_dir / METRICS_FILE).exists():
                cfg = build_config(recipe, extra + overrides + [f"trainer.seed={seed}", "eval.every=0",
                                                                "log.checkpoint_every=0"])
                train(cfg, run_dir)
            rows = [r for r in read_metrics(run_dir / METRICS_FILE) if "entropy" in r]
            out.setdefault(label, []).append(rows)
    return out


@torch.no_grad()
def base_entropy(seed: int, prompts: int = 64, group_size: int = 8, max_new_tokens: int = 8) -> float:
    """Exact token entropy of the lab base model on its own samples at T = 1 (the targets' unit)."""
    model, tok, fmt = load_policy("lab", seed=seed, progress=False)
    batch = generate_rollout(model, tok, get_task("lab").problems("train", prompts, 424242 + seed), format_prompt=fmt,
                             group_size=group_size, temperature=1.0, max_new_tokens=max_new_tokens,
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
