"""How hard do the flexible clip bounds push entropy? (2602.09782, ALGORITHMS.md §2.4)

The schedules ID, DID and OD blend between two settings of flex_clip: *boost*
(E⁺ = ε⁺(p), E⁻ = ε_std), meant to raise entropy, and *suppress* (E⁺ = ε_std,
E⁻ = ε⁻(p)), meant to lower it. A schedule can only draw its shape if these push
harder than the run's own drift. This script measures the push directly: from one
start, it trains ``--steps`` steps of each setting and of plain ppo_clip (standard
bounds) with the same trainer seed (so the first rollout is shared), measures the
exact token entropy on a fixed probe set (held-out prompts, completions sampled once
at T = 1, teacher forced) before and after, and repeats over ``--seeds`` seeds.
It prints the mean entropy change ± its standard error per setting, and the paired
difference to the standard bounds: the bounds' own push.

    python benchmarks/flex_bound_force.py --start RUN_DIR --seeds 10 --steps 5 [loss.flex.b_high=...]

``--start`` is a run directory or checkpoint (``model.init_from``); without it the
runs start from the base model. Other arguments are overrides of the ``flex_id``
recipe (its learning rate, mini-batches and bounds), on the thought lab as the
schedules experiment runs it, or ``base=RECIPE`` for that recipe's model and task
(``experiments.registry.lab_or_base``), e.g. ``base=smollm2_rg``. It also prints the
share of tokens each setting clipped: where no bound binds, the settings coincide. Each
setting starts a fresh AdamW, whose first steps move the policy most, so these shares are
above a long run's (thought lab, 1 epoch: 2.3 % here, 0.5–0.8 % over 200 steps).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from entrostat.control.flex import MODE_WEIGHTS
from entrostat.experiments.asymmetry import draw_probe, probe_entropy
from entrostat.experiments.registry import lab_or_base
from entrostat.config.recipes import build_config
from entrostat.train.trainer import Trainer

SETTINGS = {"standard": ["loss.surrogate=ppo_clip"],
            **{mode: [f"loss.flex.weight_high={w_h}", f"loss.flex.weight_low={w_l}"]
               for mode, (w_h, w_l) in MODE_WEIGHTS.items()}}
PROBE_SEED = 777


def entropy_change(overrides: list[str], seed: int, steps: int, probe=None, probe_prompts: int = 128):
    """(probe entropy after − before, mean share of tokens clipped, probe) for ``steps`` steps of flex_id's settings
    with ``overrides``."""
    cfg = build_config("flex_id", [*overrides, "control.name=none", f"trainer.seed={seed}", "eval.every=0",
                                   "log.checkpoint_every=0", "log.progress=false"])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, Path(run_dir))
        if probe is None:  # drawn once, from the start's policy
            probe = draw_probe(trainer.model, trainer.tokenizer, trainer.format_prompt,
                               trainer.task.problems("heldout", probe_prompts, PROBE_SEED), cfg.rollout.max_new_tokens,
                               torch.Generator().manual_seed(PROBE_SEED))
        before = probe_entropy(trainer.model, probe)
        records = [trainer.step() for _ in range(steps)]
        clipped = statistics.fmean(r["clip_frac_low"] + r["clip_frac_high"] for r in records)
        return probe_entropy(trainer.model, probe) - before, clipped, probe


def mean_se(xs: list[float]) -> str:
    return f"{statistics.fmean(xs):+.4f} ± {statistics.stdev(xs) / len(xs) ** 0.5:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", help="run directory or checkpoint to start from (default: the base model)")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0, help="seeds are first-seed, first-seed + 1, ...")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--probe-prompts", type=int, default=128,
                    help="held-out prompts in the probe set (a small task may have fewer distinct ones)")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of the flex_id recipe")
    a = ap.parse_intermixed_args()  # options may follow the overrides
    if a.seeds < 2:
        ap.error("--seeds must be at least 2 (a standard error needs two)")
    base = [*lab_or_base(a.overrides), *([f"model.init_from={a.start}"] if a.start else [])]
    changes: dict[str, list[float]] = {name: [] for name in SETTINGS}
    clipped: dict[str, list[float]] = {name: [] for name in SETTINGS}
    probe = None
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        for name, extra in SETTINGS.items():
            dh, clip, probe = entropy_change([*base, *extra], seed, a.steps, probe, a.probe_prompts)
            changes[name].append(dh)
            clipped[name].append(clip)
        print(f"seed {seed}: " + ", ".join(f"{n} {v[-1]:+.4f}" for n, v in changes.items()), flush=True)
    print(f"entropy change after {a.steps} steps, mean ± s.e. over {a.seeds} seeds; minus standard (paired):")
    for name, v in changes.items():
        paired = [x - s for x, s in zip(v, changes["standard"])]
        print(f"  {name:9s} {mean_se(v)}" + ("" if name == "standard" else f"   minus standard {mean_se(paired)}")
              + f"   clipped {100 * statistics.fmean(clipped[name]):.2f} % of tokens")


if __name__ == "__main__":
    main()
