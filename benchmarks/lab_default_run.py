"""Wall time of the default `entrostat train` (the lab GRPO recipe), base-model pre-training included.

Runs the CLI exactly as a user would, in a subprocess, with a fresh empty cache so the
lab base model is made from scratch; prints the wall time, the time split, and the
figures the Training-loop issue asks for (entropy fall, held-out pass@1 rise).

    python benchmarks/lab_default_run.py [--seeds 0 1 2] [extra overrides...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(seed: int, extra: list[str], fresh_cache: bool, recipe: str = "grpo") -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="entrostat-bench-"))
    env = dict(os.environ)
    if fresh_cache:
        env["ENTROSTAT_CACHE"] = str(tmp / "cache")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "entrostat.cli", "train", recipe, f"trainer.seed={seed}", "log.progress=false",
                    *extra, "--run-dir", str(tmp / "run")], check=True, env=env)
    wall = time.perf_counter() - t0
    rows = [json.loads(x) for x in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "entropy" in r]
    evals = [r for r in rows if "eval/pass@1" in r]
    h0 = sum(r["entropy"] for r in steps[:5]) / 5
    h_end = sum(r["entropy"] for r in steps[-5:]) / 5
    return {
        "recipe": recipe, "seed": seed, "wall_s": wall, "steps": len(steps),
        "train_s": sum(r["time/step"] for r in steps),
        "entropy_first5": h0, "entropy_last5": h_end, "entropy_ratio": h_end / h0,
        "pass@1_base": evals[0]["eval/pass@1"], "pass@1_final": evals[-1]["eval/pass@1"],
        "run_dir": str(tmp / "run"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--recipe", default="grpo", help="recipe to run (the default job is grpo)")
    ap.add_argument("--warm-cache", action="store_true", help="reuse $ENTROSTAT_CACHE (skip base-model pre-training)")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_intermixed_args()  # options may follow the overrides
    for seed in a.seeds:
        r = run(seed, a.overrides, fresh_cache=not a.warm_cache, recipe=a.recipe)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}))
        print(f"{a.recipe} seed {seed}: wall {r['wall_s']:.1f} s (target ≤ 180 s; ratio {r['wall_s'] / 180:.2f} of budget), "
              f"entropy {r['entropy_first5']:.3f} → {r['entropy_last5']:.3f} ({100 * r['entropy_ratio']:.0f}%), "
              f"held-out pass@1 {r['pass@1_base']:.3f} → {r['pass@1_final']:.3f}", flush=True)


if __name__ == "__main__":
    main()
