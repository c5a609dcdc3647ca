"""Predicted vs measured entropy change, with and without batch-to-batch sampling noise (ALGORITHMS.md §2.1).

The trainer logs ΔH_pred = −η·Cov (``diag/dH_pred_pg`` / ``diag/dH_pred_npg``) for each step, and
``entrostat diagnose`` compares it with the measured change entropy[k+1] − entropy[k]. Those two
entropies are means over *different* rollout batches (step k+1 samples new prompts), so the
measured change also holds the sampling noise of a batch mean, which on the lab is larger than
one step's real change. This script trains a lab run in-process and, after every step, scores
the *same* batch again at the new parameters:

    ΔH_same = H(θ_{k+1}; batch_k) − H(θ_k; batch_k)       (one extra no-grad forward per step)

and prints Pearson correlation / sign agreement of both covariance forms against both
measurements. ``--optimizer sgd`` replaces AdamW by plain SGD, the gradient step the theory
assumes (Cui et al. 2505.22617 derive ΔH for a gradient step on softmax logits).

    python benchmarks/entropy_change_same_batch.py --run-dir /tmp/x [--optimizer sgd] [key=value ...]

The run directory gets the usual metrics.jsonl (with ``same_batch/dH`` added), so
``entrostat diagnose`` works on it too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml

from entrostat.config.base import to_dict
from entrostat.diagnostics import entropy_change_agreement, pearson, sign_agreement
from entrostat.ops import masked_mean
from entrostat.config.recipes import build_config
from entrostat.rundir import MetricsLogger
from entrostat.train.trainer import Trainer, lr_factor


class SameBatchTrainer(Trainer):
    """The trainer, plus the entropy of each step's batch re-measured after the step's update."""

    def __init__(self, cfg, run_dir, optimizer: str = "adamw"):
        super().__init__(cfg, run_dir)
        if optimizer == "sgd":
            o = cfg.optim
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=o.lr)
            total = cfg.trainer.steps * cfg.trainer.mini_batches * cfg.trainer.epochs
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(
                self.optimizer, lambda s: lr_factor(s, total, o.schedule, o.warmup_steps))
        self._seen = None

    def policy_stats(self, batch, token_entropy, first_row=0):  # once per step, after the update; entropy from before it
        self._seen = (batch, token_entropy, first_row)
        return Trainer.policy_stats(batch, token_entropy, first_row)

    def step(self):
        record = super().step()
        batch, before, first = self._seen
        with torch.no_grad():
            _, after = self._chunked_forward(self.model, batch, self.cfg.model.bf16_autocast)
        rows = slice(first, None)
        mask = batch.completion_mask[rows]
        record["same_batch/dH"] = float(masked_mean(after[rows], mask) - masked_mean(before[rows], mask))
        return record


def summary(records: list[dict]) -> dict:
    steps = [r for r in records if "same_batch/dH" in r]
    out = {}
    for form in ("pg", "npg"):
        pred = [r[f"diag/dH_pred_{form}"] for r in steps]
        same = [r["same_batch/dH"] for r in steps]
        nxt = entropy_change_agreement(records, form)
        out[form] = {"same_batch_pearson": pearson(pred, same), "same_batch_sign": sign_agreement(pred, same),
                     "next_step_pearson": nxt["pearson"], "next_step_sign": nxt["sign_agreement"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--optimizer", choices=("adamw", "sgd"), default="adamw")
    ap.add_argument("--recipe", default="grpo")
    ap.add_argument("overrides", nargs="*")
    ns = ap.parse_intermixed_args()  # options may follow the overrides
    cfg = build_config(ns.recipe, ["eval.every=0", "log.checkpoint_every=0", "log.progress=false", *ns.overrides])
    run_dir = Path(ns.run_dir)
    run_dir.mkdir(parents=True, exist_ok=False)
    cfg.log.run_dir = str(run_dir)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    trainer, logger, records = SameBatchTrainer(cfg, run_dir, ns.optimizer), MetricsLogger(run_dir / "metrics.jsonl"), []
    while trainer.step_idx < cfg.trainer.steps:
        records.append(trainer.step())
        logger.log(records[-1])
    print(json.dumps({"optimizer": ns.optimizer, "lr": cfg.optim.lr, "mini_batches": cfg.trainer.mini_batches,
                      "steps": cfg.trainer.steps, "seed": cfg.trainer.seed, **summary(records)}, indent=1))


if __name__ == "__main__":
    main()
