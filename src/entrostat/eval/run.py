"""``entrostat eval``: evaluate a run, a checkpoint or the base model on held-out prompts; table and JSON.

The held-out prompts are the first ``prompts`` of the run's held-out stream
(``task.heldout_seed``), the same prompts the run's periodic evaluation uses.
Every result carries its sampling settings (n, k list, temperature, top_p,
max_new_tokens, seed): a pass@k number means nothing without them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from entrostat.config.base import ConfigError
from entrostat.eval.evaluate import sample_prompts, summarize
from entrostat.eval.passk import default_ks, parse_ks
from entrostat.eval.target import EvalTarget, load_target_policy


def check_settings(n: int, ks: str | Sequence[int] | None, temperature: float, top_p: float, prompts: int,
                   max_new_tokens: int, batch_rows: int) -> list[int]:
    """Validate the sampling settings (ConfigError saying what to change); returns the sorted k list."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--n {n!r}: the number of samples per prompt must be an integer >= 1")
    try:
        k_list = default_ks(n) if ks is None else parse_ks(ks if isinstance(ks, str) else ",".join(map(str, ks)), n)
    except ValueError as exc:
        raise ConfigError(f"--k: {exc}") from None
    if not temperature >= 0:
        raise ConfigError(f"--temperature {temperature}: must be >= 0 (0 is greedy decoding)")
    if not 0 < top_p <= 1:
        raise ConfigError(f"--top-p {top_p}: must be in (0, 1]; 1 disables nucleus sampling")
    for name, v in (("--prompts", prompts), ("--max-new-tokens", max_new_tokens), ("--batch-rows", batch_rows)):
        if v < 1:
            raise ConfigError(f"{name} {v}: must be >= 1")
    return k_list


def default_threads(cfg) -> int:
    """torch threads for evaluation: ``trainer.threads`` when set; else 1 for the lab model, 0 (torch's
    default) for others. The lab model's small matrices gain nothing from a second thread, and on a
    shared 2-core CPU two threads ran 5-30x slower than one (measured; benchmarks/eval_passk_speed.py)."""
    if cfg.trainer.threads:
        return cfg.trainer.threads
    return 1 if cfg.model.name == "lab" else 0


def evaluate_target(
    target: EvalTarget,
    *,
    n: int = 1024,
    ks: str | Sequence[int] | None = None,
    temperature: float | None = None,
    top_p: float = 1.0,
    prompts: int = 100,
    seed: int = 0,
    max_new_tokens: int | None = None,
    batch_rows: int = 1024,
    threads: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate ``target``; returns the JSON-ready result (target, settings, metrics, per-prompt counts, timing).

    ``temperature``, ``max_new_tokens`` and ``threads`` default to the run's
    ``eval.temperature``, ``rollout.max_new_tokens`` and ``trainer.threads``; see
    ``default_threads`` (the thread count is set for the whole process).
    """
    import torch

    from entrostat.tasks.scoring import build_task

    cfg = target.cfg
    temperature = cfg.eval.temperature if temperature is None else float(temperature)
    max_new_tokens = cfg.rollout.max_new_tokens if max_new_tokens is None else int(max_new_tokens)
    k_list = check_settings(n, ks, temperature, top_p, prompts, max_new_tokens, batch_rows)
    threads = default_threads(cfg) if threads is None else threads
    if threads < 0:
        raise ConfigError(f"--threads {threads}: must be >= 0 (0 leaves torch's default)")
    if threads:
        torch.set_num_threads(threads)
    task = build_task(cfg.task)  # with a custom task.reward; never the training-only shaping
    try:
        problems = task.problems("heldout", prompts, cfg.task.heldout_seed)
    except ValueError as exc:
        raise ConfigError(f"--prompts {prompts}: {exc}") from None
    t0 = time.perf_counter()
    model, tokenizer, format_prompt = load_target_policy(target, progress=progress)
    t1 = time.perf_counter()
    results = sample_prompts(
        model, tokenizer, task, problems, format_prompt=format_prompt, n=n, temperature=temperature,
        max_new_tokens=max_new_tokens, seed=seed, top_p=top_p, batch_rows=batch_rows, progress=progress,
    )
    t2 = time.perf_counter()
    return {
        "target": target.label,
        "checkpoint": None if target.checkpoint is None else str(target.checkpoint),
        "step": target.step,
        "model": cfg.model.name,
        "task": cfg.task.name,
        "settings": {"n": n, "ks": k_list, "temperature": temperature, "top_p": top_p,
                     "max_new_tokens": max_new_tokens, "prompts": prompts, "heldout_seed": cfg.task.heldout_seed,
                     "seed": seed, "batch_rows": batch_rows},
        "metrics": summarize(results, n, k_list),
        "per_prompt": [{"id": r.problem_id, "n_correct": r.n_correct} for r in results],
        "timing": {"load_s": t1 - t0, "sample_s": t2 - t1, "samples_per_s": n * len(problems) / max(t2 - t1, 1e-9),
                   "threads": torch.get_num_threads()},
    }


def format_results(result: dict[str, Any]) -> str:
    """The result as a text table: what was evaluated, the sampling settings, pass@k by k, mean@n, maj@n."""
    s, m = result["settings"], result["metrics"]
    what = f"checkpoint step {result['step']}" if result["checkpoint"] else "base model"
    lines = [
        f"entrostat eval {result['target']} ({what}; model {result['model']}, task {result['task']})",
        (f"sampling: n={s['n']} per prompt, temperature={s['temperature']}, top_p={s['top_p']}, "
         f"max_new_tokens={s['max_new_tokens']}, seed={s['seed']}; {s['prompts']} held-out prompts "
         f"(heldout_seed {s['heldout_seed']})"),
        "",
        f"{'k':>6}  pass@k",
        *(f"{k:>6}  {m[f'pass@{k}']:.4f}" for k in s["ks"]),
        "",
        f"mean@n            {m['mean@n']:.4f}",
        f"maj@n             {m['maj@n']:.4f}" if "maj@n" in m else "maj@n             n/a (no comparable answers)",
        f"distinct_correct  {m['distinct_correct']:.2f}",
    ]
    t = result["timing"]
    lines.append(f"{s['n'] * s['prompts']} samples in {t['sample_s']:.1f} s ({t['samples_per_s']:.0f} samples/s, "
                 f"threads={t['threads']})")
    return "\n".join(lines)


def write_results(result: dict[str, Any], path: Path) -> None:
    """Write the result as JSON (``eval*.json`` in a run directory is picked up by ``entrostat report``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
