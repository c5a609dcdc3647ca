"""`entrostat experiment NAME`: the experiments, each writing results.json, a table and a figure."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from entrostat.registry import Registry

EXPERIMENTS: Registry[Callable[..., Path]] = Registry("experiment")

# The controller experiments run on the thought lab (tasks.lab): an LLM's entropy sits mostly in reasoning tokens the
# verifier does not constrain, which is what AEPO's positives and the flex bounds act on; the bare lab has none.
# The budget leaves room past the 7 tokens of thought, answer and EOS. Later overrides win.
THOUGHT_LEN, THOUGHT_BUDGET = 3, 12
THOUGHT_LAB = (f"task.kwargs.thought_len={THOUGHT_LEN}", f"rollout.max_new_tokens={THOUGHT_BUDGET}")
# ``base=RECIPE`` (schedules): the runs take that recipe's model, task, sampling, optimizer and evaluation instead.
BASE_SECTIONS = ("model", "task", "rollout", "optim", "eval")


def lab_or_base(overrides: list[str]) -> list[str]:
    """The runs' overrides: the thought lab, or with ``base=RECIPE`` among ``overrides`` that recipe's
    ``BASE_SECTIONS`` (e.g. ``base=smollm2_rg``: an LLM, for a machine with a GPU); the rest follow and win."""
    from entrostat.config.recipes import recipe_overrides

    base, rest = pop_setting(overrides, "base")
    if base is None:
        return [*THOUGHT_LAB, *rest]
    return [*recipe_overrides(base, BASE_SECTIONS, skip=("model.init_from",)), *rest]


def pop_setting(overrides: list[str], key: str) -> tuple[str | None, list[str]]:
    """(the value of an experiment's own ``key=VALUE`` among ``overrides``, the last one winning, or None; the
    other overrides)."""
    values = [o.split("=", 1)[1].strip() for o in overrides if o.startswith(f"{key}=")]
    return (values[-1] if values else None), [o for o in overrides if not o.startswith(f"{key}=")]


def _mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


@EXPERIMENTS.register("asymmetry")
def asymmetry(out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    """REINFORCE on positive-only vs negative-only samples drawn at each temperature; ΔH per cell, from the
    pre-trained base model and from the base after ``ASYMMETRY_WARMUP`` GRPO steps (see experiments.asymmetry), on
    the thought lab. Overrides: ``warmup=N[,M...]`` (starts), or any AsymmetrySettings field, e.g. ``lr=0.01``
    (``thought_len=0 max_new_tokens=8``: the bare lab)."""
    import dataclasses

    from tqdm.auto import tqdm

    from entrostat.experiments.asymmetry import (
        TEMPERATURES,
        AsymmetrySettings,
        run_asymmetry,
    )
    from entrostat.report.plots import asymmetry_figure

    opts = {"thought_len": THOUGHT_LEN, "max_new_tokens": THOUGHT_BUDGET,
            **_key_values(overrides, [f.name for f in dataclasses.fields(AsymmetrySettings)] + ["warmup"])}
    starts = [int(x) for x in str(opts.pop("warmup", ",".join(map(str, ASYMMETRY_WARMUP)))).split(",")]
    base = AsymmetrySettings(**{k: type(getattr(AsymmetrySettings, k))(v) for k, v in opts.items()})
    rows = []
    with tqdm(total=len(starts) * len(seeds) * len(TEMPERATURES) * 2, desc="asymmetry", unit="cell") as bar:
        for w in starts:
            for seed in seeds:
                rows.extend(run_asymmetry(seed, dataclasses.replace(base, warmup_steps=w), progress=bar))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(rows, indent=1))
    table = []
    for w in starts:
        for t in TEMPERATURES:
            for sign in ("positive", "negative"):
                cell = [r for r in rows if r["warmup_steps"] == w and r["temperature"] == t and r["sign"] == sign]
                m, sd = _mean_std([r["entropy_change"] for r in cell])
                h0, _ = _mean_std([r["entropy_before"] for r in cell])
                table.append({"warmup_steps": w, "temperature": t, "sign": sign, "entropy_before": h0,
                              "entropy_change_mean": m, "entropy_change_std": sd,
                              "seeds_with_claimed_sign": sum(_claimed_sign(t, sign, r["entropy_change"]) for r in cell)})
    (out_dir / "summary.json").write_text(json.dumps(table, indent=1))
    asymmetry_figure(table, out_dir / "asymmetry.png")
    for w in starts:
        cells = [r for r in table if r["warmup_steps"] == w]
        start = "pre-trained base" if w == 0 else f"base + {w} GRPO steps"
        print(f"{start} (probe entropy {cells[0]['entropy_before']:.3f}), ΔH mean ± std over {len(seeds)} seed(s):")
        print(f"{'T':>5} {'positive ΔH':>18} {'negative ΔH':>18}")
        for t in TEMPERATURES:
            by = {r["sign"]: r for r in cells if r["temperature"] == t}
            print(f"{t:5.1f} " + " ".join(f"{by[s]['entropy_change_mean']:+9.4f} ± {by[s]['entropy_change_std']:.4f}"
                                        for s in ("positive", "negative")))
    return out_dir


SCHEDULES_WARMUP = 40  # GRPO steps before the schedules start (thought lab: from entropy 1.63 to about 1.19)
ASYMMETRY_WARMUP = (0, 40)  # starts: the pre-trained base, and after 40 GRPO steps (thought lab: entropy 1.63, 1.19)


def _claimed_sign(temperature: float, sign: str, change: float) -> bool:
    """Whether a hot (T ≥ 1.2) cell has the claimed sign: positives raise entropy, negatives lower it."""
    if temperature < 1.2 or math.isnan(change):
        return False
    return change > 0 if sign == "positive" else change < 0


def _key_values(overrides: list[str], valid: list[str]) -> dict[str, str]:
    """``key=value`` overrides of an experiment's own settings; an unknown key raises a ConfigError."""
    from entrostat.config.base import ConfigError

    out = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or key not in valid:
            raise ConfigError(f"experiment setting {item!r} is not KEY=VALUE with KEY one of {', '.join(valid)}")
        out[key] = value
    return out


@EXPERIMENTS.register("schedules")
def schedules(out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    """Entropy trajectories of the flexible-clipping schedules ID, DID and OD (2602.09782), each judged by
    ``experiments.shapes.shape_check``, next to GRPO with the same settings (the flex recipes' learning rate and
    mini-batches, the standard ppo_clip bounds): the difference to it is what the clip bounds did, and a shape
    counts only where GRPO's mean curve does not pass the same check (measured: it drew OD's, and ID's or DID's
    on 2 of 3 seeds, with 0.02-nat peaks of its sampling noise). On the thought lab, or on ``base=RECIPE``'s model
    and task (``lab_or_base``), every run starting from the base after ``SCHEDULES_WARMUP`` GRPO steps
    (out_dir/warmup/seed-N): RL on an LLM starts from an instruct model that is already sharp, not from a
    demonstrator's spread. ``warmup=N`` sets those steps (``warmup=0``: from the base itself, e.g. an instruct
    LLM with ``base=RECIPE``)."""
    from entrostat.config.base import ConfigError
    from entrostat.experiments.runs import run_group, warm_start
    from entrostat.experiments.shapes import shape_check
    from entrostat.report.plots import trajectories_figure

    warmup, rest = pop_setting(overrides, "warmup")
    if warmup is not None and not warmup.isdigit():
        raise ConfigError(f"warmup={warmup}: use a number of GRPO steps >= 0")
    warmup, overrides = SCHEDULES_WARMUP if warmup is None else int(warmup), lab_or_base(rest)
    start = []
    if warmup:
        for seed in seeds:
            warm_start(out_dir / "warmup" / f"seed-{seed}", seed, warmup, overrides)
        start = [f"model.init_from={out_dir / 'warmup'}/seed-{{seed}}"]
    reference = ("grpo", "flex_id", [*start, "control.name=none", "loss.surrogate=ppo_clip"])
    runs = run_group(out_dir, [(n, n, start) for n in ("flex_id", "flex_did", "flex_od")] + [reference], seeds,
                     overrides)
    trajectories_figure(runs, {}, out_dir / "schedules.png", "Flexible clipping schedules")
    mean = {label: [statistics.fmean(hs) for hs in zip(*[[r["entropy"] for r in rows] for rows in seed_runs])]
            for label, seed_runs in runs.items()}
    n = len(mean["grpo"])
    marks = [0, n // 4, n // 2, 3 * n // 4, n - 5]

    def window(h: list[float], i: int) -> float:
        return statistics.fmean(h[i: i + 5])

    results = {}
    print(f"mean over {len(seeds)} seed(s); entropy at 0, K/4, K/2, 3K/4, K (5-step means), and minus GRPO's:")
    for label, h in mean.items():
        row = {"entropy": [window(h, i) for i in marks],
               "minus_grpo": [window(h, i) - window(mean["grpo"], i) for i in marks]}
        line = f"{label:9s} " + "  ".join(f"{x:.3f}" for x in row["entropy"])
        if label != "grpo":
            shape = label.removeprefix("flex_")
            ok, what = shape_check(shape, h)
            by_grpo = shape_check(shape, mean["grpo"])[0]  # the control: noise alone can draw the shape
            row["shape"] = {"passed": ok and not by_grpo, "measured": what, "grpo_passes": by_grpo}
            verdict = "met" if ok and not by_grpo else "NOT met" + (" (GRPO's curve passes it too)" if by_grpo else "")
            line += "   Δ " + " ".join(f"{d:+.3f}" for d in row["minus_grpo"]) + f"   shape {verdict}: {what}"
        results[label] = row
        print(line)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    return out_dir


@EXPERIMENTS.register("targets")
def targets(out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    """AEPO and the thermostat at H* = 0.3, 0.5, 0.8 × the base model's entropy (AEPO's first figure), on the
    thought lab."""
    from entrostat.experiments.runs import base_entropy, run_group, tracking_table
    from entrostat.report.plots import trajectories_figure

    overrides = [*THOUGHT_LAB, *overrides]
    h0 = base_entropy(seeds[0], overrides)
    specs, goals = [], {}
    for frac in (0.3, 0.5, 0.8):
        goal = round(frac * h0, 4)
        for method in ("aepo", "thermostat"):
            label = f"{method}@{frac}"
            specs.append((label, method, [f"control.kwargs.target={goal}"]))
            goals[label] = goal
    runs = run_group(out_dir, specs, seeds, overrides)
    table = tracking_table(runs, goals)
    (out_dir / "tracking.json").write_text(json.dumps(table, indent=1))
    trajectories_figure(runs, goals, out_dir / "targets.png", f"Entropy at targets (base entropy {h0:.3f})")
    for row in table:
        print(f"{row['label']:16s} run {row['run']}: tracking error {row['tracking_error']:.3f}  "
              f"oscillation {row['oscillation']:.3f}  overshoot {row['overshoot']:.3f}")
    return out_dir


AUTHORS_METHODS = ("dcpo", "scope_rl", "aepo", "aepo_paper")
PASS_KS = (1, 2, 4, 8, 16, 32, 64)


@EXPERIMENTS.register("authors")
def authors(out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    """DCPO, SCOPE-RL, AEPO (the lab recipe and as the authors ran it) and GRPO on the thought lab at H* = 0.3, 0.5,
    0.8 × the base model's entropy: tracking error (second half), final training reward (mean of the last 10
    steps) and held-out pass@k, k = 1 … 64, at the last step (100 prompts × 64 samples, T = 1). The targets' unit
    is the base entropy of seed ``base_seed=N`` (default: the first seed), so seeds split over processes
    (``--seeds 1 base_seed=0``) train the same runs as one process would."""
    from entrostat.experiments.runs import base_entropy, run_group

    base_seed, overrides = pop_setting(overrides, "base_seed")
    overrides = [*THOUGHT_LAB, "eval.prompts=100", "eval.samples=64", *overrides]
    h0 = base_entropy(int(base_seed) if base_seed is not None else seeds[0], overrides)
    specs, goals = [("grpo", "grpo", [])], {}
    for frac in (0.3, 0.5, 0.8):
        for method in AUTHORS_METHODS:
            goals[f"{method}@{frac}"] = round(frac * h0, 4)
            specs.append((f"{method}@{frac}", method, [f"control.kwargs.target={goals[f'{method}@{frac}']}"]))
    runs = run_group(out_dir, specs, seeds, overrides, final_eval=True)
    table = authors_table(runs, goals, {frac: round(frac * h0, 4) for frac in (0.3, 0.5, 0.8)})
    (out_dir / "results.json").write_text(json.dumps({"base_entropy": h0, "rows": table}, indent=1))
    lines = authors_markdown(table, h0, len(seeds))
    (out_dir / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out_dir


def authors_table(runs: dict, goals: dict[str, float], fracs: dict[float, float]) -> list[dict]:
    """One row per (label, H*): mean ± std over seeds of tracking error, final reward and final pass@k. GRPO has no
    target: its row appears under each H*, its error measured against that H*."""
    from entrostat.control.metrics import tracking_metrics

    rows = []
    for label, seeds in runs.items():
        targets = [(label.split("@")[1], goals[label])] if label in goals else [(str(f), h) for f, h in fracs.items()]
        for frac, goal in targets:
            per_seed = [{"error": tracking_metrics([r["entropy"] for r in recs], [goal] * len(recs))["tracking_error"],
                         "reward": statistics.fmean(r["reward_mean"] for r in recs[-10:]),
                         **{f"pass@{k}": recs[-1].get(f"eval/pass@{k}", math.nan) for k in PASS_KS}}
                        for recs in seeds]
            row = {"method": label.split("@")[0], "frac": float(frac), "target": goal}
            for key in per_seed[0]:
                vals = [p[key] for p in per_seed]
                row[key] = statistics.fmean(vals)
                row[f"{key}_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
            rows.append(row)
    return sorted(rows, key=lambda r: (r["frac"], r["method"]))


def authors_markdown(table: list[dict], h0: float, n_seeds: int) -> list[str]:
    head = ["H*", "method", "tracking error", "final reward", *(f"pass@{k}" for k in PASS_KS)]
    lines = [f"Thought lab, base entropy {h0:.3f}; mean ± std over {n_seeds} seeds.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        cells = [f"{r['frac']} × base ({r['target']:.3f})", r["method"], f"{r['error']:.3f} ± {r['error_std']:.3f}",
                 f"{r['reward']:.3f} ± {r['reward_std']:.3f}", *(f"{r[f'pass@{k}']:.3f}" for k in PASS_KS)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def run_experiment(name: str, out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    return EXPERIMENTS.get(name)(out_dir, seeds, overrides)
