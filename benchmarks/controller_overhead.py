"""Step-time overhead of each entropy controller versus plain GRPO, measured side by side.

One process, the lab model (cached), interleaved rounds: each round runs a few steps of
every configuration in turn, so drift on the machine hits all of them alike. Step time
excludes the auxiliary rollout (`time/aux_rollout`), which is reported as its own figure.

    python benchmarks/controller_overhead.py [--steps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from entrostat.config.recipes import build_config
from entrostat.train.trainer import Trainer

CONFIGS = {
    "grpo": ("grpo", []),
    "adaptive_entropy": ("grpo", ["control.name=adaptive_entropy"]),
    "thermostat": ("grpo", ["control.name=thermostat", "control.kwargs={actuator: entropy_coef, target: 0.45}"]),
    "thermostat+predict": ("grpo", ["control.name=thermostat",
                                    "control.kwargs={actuator: entropy_coef, target: 0.45, predict_gain: 1.0}"]),
    "flex_id": ("grpo", ["loss.surrogate=flex_clip", "control.name=flex_id"]),
    "flex_od": ("grpo", ["loss.surrogate=flex_clip", "control.name=flex_od"]),
    "aepo": ("grpo", ["control.name=aepo", "control.kwargs={target: 0.45}"]),
    "scope_rl": ("grpo", ["control.name=scope_rl", "control.kwargs={target: 0.45}"]),
    "dcpo": ("grpo", ["control.name=dcpo", "control.kwargs={target: 0.45}"]),  # + a no-grad old-log-prob pass
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10, help="steps per configuration per round")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    trainers = {}
    for name, (recipe, over) in CONFIGS.items():
        cfg = build_config(recipe, over + ["log.progress=false", "eval.every=0", "trainer.steps=100000"])
        trainers[name] = Trainer(cfg, tempfile.mkdtemp(prefix=f"overhead-{name}-"))
    times: dict[str, list[float]] = {n: [] for n in CONFIGS}
    aux: dict[str, list[float]] = {n: [] for n in CONFIGS}
    ctrl: dict[str, list[float]] = {n: [] for n in CONFIGS}
    for _ in range(a.rounds):
        for name, tr in trainers.items():
            for _ in range(a.steps):
                r = tr.step()
                times[name].append(r["time/step"] - r["time/aux_rollout"])
                aux[name].append(r["time/aux_rollout"])
                ctrl[name].append(r["time/control"] / r["time/step"])
    base = statistics.median(times["grpo"])
    print(f"median step time without auxiliary sampling; {a.rounds} rounds × {a.steps} steps, lab model, "
          f"16 prompts × 8 samples")
    print("ratio vs grpo compares different trajectories (a controller changes the policy and so the lengths);")
    print("'controller share' is the time inside the controllers (values, actuators, update) / step time.")
    print(f"{'config':20s} {'step s':>8s} {'ratio vs grpo':>14s} {'controller share':>17s} {'aux rollout s':>14s} {'aux / step':>10s}")
    for name in CONFIGS:
        med = statistics.median(times[name])
        aux_med = statistics.median(aux[name])
        share = statistics.median(ctrl[name])
        print(f"{name:20s} {med:8.4f} {med / base:14.3f} {share:17.5f} {aux_med:14.4f} {aux_med / med:10.3f}")


if __name__ == "__main__":
    main()
