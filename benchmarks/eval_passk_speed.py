"""Wall time of `entrostat eval base --n 1024 --prompts 100 --max-new-tokens 8` against the 2-minute target.

The real default lab base model (cached in ~/.cache/entrostat after its first
build), 100 held-out prompts × 1024 samples, temperature 1, max_new_tokens 8:
sampling and scoring time, samples/s, and the ratio to the 2-minute target.
A baseline measures, on a few prompts, the sampling path evaluation used before
(every row prefilled, finished rows decoded on, every row scored), to print the
speed-up. The machine's load average is printed before and after: other jobs
share the cores, and the figure means little without it.

    python benchmarks/eval_passk_speed.py [--prompts 100] [--n 1024] [--threads N] [--baseline-prompts 4]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

TARGET_S = 120.0


def baseline_samples_per_s(model, tokenizer, task, problems, fmt, n: int, max_new_tokens: int) -> float:
    """The previous evaluation path: generate_rollout on the repeated prompt, then task.score on every row."""
    from entrostat.rollout.batch import generate_rollout

    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    for p in problems:
        batch = generate_rollout(model, tokenizer, [p], format_prompt=fmt, group_size=n, temperature=1.0,
                                 max_new_tokens=max_new_tokens, generator=gen)
        for text in batch.meta["texts"]:
            task.score(p, text), task.canonical(p, text)
    return n * len(problems) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=100)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--threads", type=int, help="torch threads (default: as `entrostat eval`, 1 for the lab model)")
    ap.add_argument("--batch-rows", type=int, default=1024)
    ap.add_argument("--baseline-prompts", type=int, default=4, help="prompts for the old-path baseline (0: skip)")
    a = ap.parse_args()

    from entrostat.eval.run import evaluate_target, format_results
    from entrostat.eval.target import load_target_policy, resolve_target

    target = resolve_target("base")
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    result = evaluate_target(target, n=a.n, prompts=a.prompts, max_new_tokens=a.max_new_tokens, threads=a.threads,
                             batch_rows=a.batch_rows, temperature=1.0, progress=False)
    wall = time.perf_counter() - t0
    load_after = os.getloadavg()
    print(format_results(result))
    print()
    timing = result["timing"]
    total = a.n * a.prompts
    print(f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f} (1-min), {os.cpu_count()} CPUs, "
          f"torch threads {timing['threads']}")
    print(f"sampling + scoring {total} samples: {timing['sample_s']:.1f} s, {timing['samples_per_s']:.0f} samples/s "
          f"(model load {timing['load_s']:.1f} s, whole call {wall:.1f} s)")
    print(f"ratio to the {TARGET_S:.0f} s target: {timing['sample_s'] / TARGET_S:.3f} "
          f"({'within' if timing['sample_s'] <= TARGET_S else 'OVER'} target; whole call {wall / TARGET_S:.3f})")
    if a.baseline_prompts:
        from entrostat.tasks.base import get_task

        cfg = target.cfg
        task = get_task(cfg.task.name, **cfg.task.kwargs)
        problems = task.problems("heldout", a.baseline_prompts, cfg.task.heldout_seed)
        model, tokenizer, fmt = load_target_policy(target, progress=False)
        old = baseline_samples_per_s(model, tokenizer, task, problems, fmt, a.n, a.max_new_tokens)
        print(f"previous path on {a.baseline_prompts} prompts: {old:.0f} samples/s; "
              f"speed-up {timing['samples_per_s'] / old:.2f}x (load now {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
