"""`entrostat experiment NAME`: the experiments, each writing results.json, a table and a figure."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Callable

from entrostat.registry import Registry

EXPERIMENTS: Registry[Callable[..., Path]] = Registry("experiment")


def _mean_std(xs: list[float]) -> tuple[float, float]:
    xs = [x for x in xs if not math.isnan(x)]
    if not xs:
        return float("nan"), float("nan")
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


@EXPERIMENTS.register("asymmetry")
def asymmetry(out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    """REINFORCE on positive-only vs negative-only samples drawn at each temperature; ΔH per cell."""
    from tqdm.auto import tqdm

    from entrostat.experiments.asymmetry import TEMPERATURES, run_asymmetry
    from entrostat.report.plots import asymmetry_figure

    rows = []
    with tqdm(total=len(seeds) * len(TEMPERATURES) * 2, desc="asymmetry", unit="cell") as bar:
        for seed in seeds:
            rows.extend(run_asymmetry(seed, progress=bar))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(rows, indent=1))
    table = []
    for t in TEMPERATURES:
        for sign in ("positive", "negative"):
            m, sd = _mean_std([r["entropy_change"] for r in rows if r["temperature"] == t and r["sign"] == sign])
            table.append({"temperature": t, "sign": sign, "entropy_change_mean": m, "entropy_change_std": sd})
    (out_dir / "summary.json").write_text(json.dumps(table, indent=1))
    asymmetry_figure(table, out_dir / "asymmetry.png")
    print(f"{'T':>5} {'positive ΔH':>18} {'negative ΔH':>18}")
    for t in TEMPERATURES:
        cells = {r["sign"]: r for r in table if r["temperature"] == t}
        print(f"{t:5.1f} " + " ".join(f"{cells[s]['entropy_change_mean']:+9.4f} ± {cells[s]['entropy_change_std']:.4f}"
                                    for s in ("positive", "negative")))
    return out_dir


def run_experiment(name: str, out_dir: Path, seeds: list[int], overrides: list[str]) -> Path:
    return EXPERIMENTS.get(name)(out_dir, seeds, overrides)
