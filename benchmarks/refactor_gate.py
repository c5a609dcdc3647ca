"""Refactor gate: a refactor changes no number.

Trains each recipe of ``RECIPES`` for ``--steps`` lab steps at one fixed seed and compares every
metrics field except wall-clock ones (``time/``, ``throughput/``) bit for bit:

    python benchmarks/refactor_gate.py --ref origin/main     # the reference revision and this tree, side by side
    python benchmarks/refactor_gate.py --save before.json    # record this tree's metrics
    python benchmarks/refactor_gate.py --against before.json # compare this tree with a record

``--ref REV`` checks REV out into a temporary git worktree and runs it with the same Python (its
``src/`` first on ``PYTHONPATH``), then this tree; both use the same lab base-model cache. Exit code
0 when every recipe matches, 1 otherwise; the table names the first field that differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("grpo", "dr_grpo", "clip_cov", "kl_cov", "ce_gppo", "flex_od", "aepo", "scope_rl", "thermostat")
TIMING_PREFIXES = ("time/", "throughput/")


def run_recipes(src: Path, recipes, steps: int, seed: int, work: Path, overrides=()) -> dict[str, list[dict]]:
    """{recipe: metrics records without timing fields}, each recipe trained by ``src``'s entrostat."""
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONWARNINGS": "ignore"}
    out = {}
    for recipe in recipes:
        run_dir = work / recipe
        cmd = [sys.executable, "-m", "entrostat.cli", "train", recipe, f"trainer.steps={steps}", f"trainer.seed={seed}",
               f"log.run_dir={run_dir}", "log.progress=false", "trainer.threads=1", *overrides]
        proc = subprocess.run(cmd, env=env, cwd=src.parent, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{recipe} failed under {src}:\n{proc.stderr[-3000:]}")
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
        out[recipe] = [{k: v for k, v in r.items() if not k.startswith(TIMING_PREFIXES)} for r in rows]
        print(f"  {recipe}: {len(rows)} rows", file=sys.stderr, flush=True)
    return out


def first_difference(a: list[dict], b: list[dict]) -> str | None:
    """None when identical, else a short description of the first difference."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} rows"
    for ra, rb in zip(a, b):
        for key in sorted(set(ra) | set(rb)):
            if ra.get(key, "<missing>") != rb.get(key, "<missing>"):
                return f"step {ra.get('step')}: {key} {ra.get(key, '<missing>')!r} vs {rb.get(key, '<missing>')!r}"
    return None


def compare(ref: dict, new: dict) -> bool:
    ok = True
    print(f"{'recipe':<12} {'rows':>5} {'fields':>7}  result")
    for recipe in ref:
        if recipe not in new:
            continue
        diff = first_difference(ref[recipe], new[recipe])
        fields = sum(len(r) for r in new[recipe])
        print(f"{recipe:<12} {len(new[recipe]):>5} {fields:>7}  {'bit-identical' if diff is None else 'DIFFERS: ' + diff}")
        ok &= diff is None
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="git revision to compare against (run in a temporary worktree)")
    ap.add_argument("--save", type=Path, help="write this tree's metrics to a JSON file")
    ap.add_argument("--against", type=Path, help="compare this tree with a JSON file written by --save")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="the source tree to test (default: this one)")
    ap.add_argument("overrides", nargs="*", help="key=value overrides for every run of both trees (e.g. a recipe "
                    "setting changed on purpose, set back to compare the rest)")
    args = ap.parse_args()
    recipes = [r for r in args.recipes.split(",") if r]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ref = None
        if args.ref:
            tree = tmp / "ref"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.ref], cwd=ROOT, check=True,
                           capture_output=True)
            try:
                print(f"reference {args.ref}:", file=sys.stderr)
                ref = run_recipes(tree / "src", recipes, args.steps, args.seed, tmp / "runs-ref", args.overrides)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        elif args.against:
            ref = json.loads(args.against.read_text())
        print("this tree:", file=sys.stderr)
        new = run_recipes(args.src.resolve(), recipes, args.steps, args.seed, tmp / "runs-new", args.overrides)
    if args.save:
        args.save.write_text(json.dumps(new))
        print(f"wrote {args.save}")
    if ref is None:
        return 0
    return 0 if compare(ref, new) else 1


if __name__ == "__main__":
    sys.exit(main())
