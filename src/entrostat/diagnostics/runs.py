"""Diagnostics of a whole run directory: the law fitted on a prefix, predicted vs measured ΔH.

Reads ``metrics.jsonl`` (a truncated line is skipped with a warning) and turns the records
into the reports printed by ``entrostat fit-law`` and ``entrostat diagnose``.

Pairing entropy with an evaluation: the ``eval/...`` values in record k are measured after
step k's update (parameters θ_k), while record k's ``entropy`` is measured on step k's
rollout before it (θ_{k−1}). So an evaluation at step k is paired with the entropy of
record k+1 (measured at θ_k); the last evaluation of a run has no record k+1 and takes
record k's own entropy (one update earlier). A training metric (``reward_mean``,
``pass_rate``) is paired with the entropy of its own record (the same rollout).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from entrostat.diagnostics.covariance import COVARIANCE_FORMS, QUADRANTS
from entrostat.diagnostics.entropy_change import entropy_change_agreement
from entrostat.diagnostics.law import (
    MIN_POINTS,
    LawFitError,
    bootstrap_law,
    fit_entropy_law,
)
from entrostat.rundir import read_metrics

METRICS_FILE = "metrics.jsonl"
DEFAULT_METRICS = ("eval/pass@1", "reward_mean")  # the first one a run has is used


class DiagnosticsError(ValueError):
    """A run directory cannot be diagnosed as asked; the message says why and what to do."""


def load_run_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``run_dir/metrics.jsonl``, with clear errors for a missing or empty file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DiagnosticsError(f"{run_dir} is not a directory; pass a run directory written by `entrostat train`")
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise DiagnosticsError(f"{run_dir} has no {METRICS_FILE}: not an entrostat run directory, or the run "
                               "has not finished its first step yet")
    records = [r for r in read_metrics(path) if isinstance(r, dict)]
    if not records:
        raise empty_metrics_error(path)
    return records


def empty_metrics_error(path: Path) -> DiagnosticsError:
    """The refusal of a metrics file without records, shared by every command that reads runs (fit-law,
    diagnose, report, compare), so they agree."""
    return DiagnosticsError(f"{path} holds no metrics records (empty file): the run has not logged a step yet, "
                            "so there is nothing to read; wait for its first step or leave the run out")


def law_points(records: list[dict[str, Any]], metric: str | None = None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(metric used, steps, H, R) of the (entropy, metric) pairs of a run, in step order."""
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if any(_finite(r.get(m)) for r in records)), None)
        if metric is None:
            raise DiagnosticsError(f"the run has neither {' nor '.join(DEFAULT_METRICS)}; pass --metric KEY")
    elif not any(_finite(r.get(metric)) for r in records):
        known = sorted({k for r in records for k, v in r.items() if k.startswith("eval/") or k in ("reward_mean", "pass_rate")})
        raise DiagnosticsError(f"no record has the metric {metric!r}; this run has: {', '.join(known) or 'none of the usual'}")
    entropy = {r["step"]: r["entropy"] for r in records if _finite(r.get("entropy")) and "step" in r}
    after_update = metric.startswith("eval/")
    steps, h, rs = [], [], []
    for rec in sorted((r for r in records if _finite(r.get(metric)) and "step" in r), key=lambda r: r["step"]):
        k = rec["step"]
        hk = entropy.get(k + 1, entropy.get(k)) if after_update else entropy.get(k)
        if hk is not None:
            steps.append(k)
            h.append(hk)
            rs.append(rec[metric])
    return metric, np.array(steps), np.array(h, dtype=np.float64), np.array(rs, dtype=np.float64)


def fit_law_on_run(
    records: list[dict[str, Any]], fit_frac: float = 1 / 3, metric: str | None = None,
    n_boot: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, Any]:
    """Fit the law on the pairs of the first ``fit_frac`` of the run's steps; predict the last pair's R.

    Returns a JSON-ready report: the prefix fit (a, b, R², ceiling and its bootstrap interval),
    the final point (actual R, predicted R with its interval, error) and the fit on all pairs.
    """
    if not 0 < fit_frac <= 1:
        raise DiagnosticsError(f"--fit-frac must be in (0, 1], got {fit_frac}")
    if n_boot < 1:
        raise DiagnosticsError(f"--bootstrap must be at least 1 resample, got {n_boot}")
    metric, steps, h, r = law_points(records, metric)
    last_step = max(int(x["step"]) for x in records if "step" in x)
    cutoff = fit_frac * last_step
    pre = steps <= cutoff
    where = f"the first {fit_frac:.0%} of the run (steps ≤ {cutoff:g} of {last_step})"
    if int(pre.sum()) < MIN_POINTS:
        raise DiagnosticsError(
            f"fitting the law on {where} needs at least {MIN_POINTS} (entropy, {metric}) pairs; found {int(pre.sum())} "
            f"({len(steps)} in the whole run). Evaluate more often (eval.every), raise --fit-frac, or use "
            "--metric reward_mean (logged every step)")
    try:
        fit = fit_entropy_law(h[pre], r[pre])
        boot = bootstrap_law(h[pre], r[pre], n_boot=n_boot, seed=seed, level=level, predict_at=[h[-1]])
        full = fit_entropy_law(h, r)
    except LawFitError as exc:
        raise DiagnosticsError(f"cannot fit the law on {where}: {exc}") from exc
    predicted = float(fit.predict(h[-1]))
    return {
        "metric": metric, "fit_frac": fit_frac, "fit_steps": [int(steps[pre][0]), int(steps[pre][-1])],
        "prefix_fit": {**_fit_dict(fit), "ceiling_interval": list(boot["ceiling"])},
        "final": {"step": int(steps[-1]), "entropy": float(h[-1]), "actual": float(r[-1]), "predicted": predicted,
                  "predicted_interval": list(boot["predict"][0]), "abs_error": abs(predicted - float(r[-1]))},
        "full_fit": _fit_dict(full),
        "bootstrap": {"resamples": boot["resamples"], "dropped": boot["dropped"], "seed": seed, "level": level},
    }


def diagnose_run(records: list[dict[str, Any]], smooth: int = 1) -> dict[str, Any]:
    """Predicted vs measured ΔH for both covariance forms, and run-mean quadrant shares / contributions."""
    if smooth < 1:
        raise DiagnosticsError(f"--smooth must be at least 1 step (1: no smoothing), got {smooth}")
    if not any(_finite(r.get("diag/dH_pred_npg")) for r in records):
        raise DiagnosticsError("the run's metrics have no diag/... keys: it was trained before entrostat logged "
                               "diagnostics; train it again to diagnose it")
    out: dict[str, Any] = {"smooth": smooth, "entropy_change": {}}
    for form in COVARIANCE_FORMS:
        out["entropy_change"][form] = entropy_change_agreement(records, form, smooth=1)
        if smooth > 1:
            out["entropy_change"][f"{form}_smoothed"] = entropy_change_agreement(records, form, smooth=smooth)
    train = [r for r in records if _finite(r.get("diag/quadrant/zero_adv/share"))]
    out["quadrants"] = {
        q: {k: float(np.mean([r[f"diag/quadrant/{q}/{k}"] for r in train])) for k in ("share", "cov_contrib")}
        for q in QUADRANTS
    }
    ent = [r for r in records if _finite(r.get("diag/entropy/p50"))]
    keys = [k for k in ("mean", "p10", "p50", "p90", "p99", "high_frac")]
    out["entropy"] = {"first": {k: ent[0][f"diag/entropy/{k}"] for k in keys},
                      "last": {k: ent[-1][f"diag/entropy/{k}"] for k in keys}}
    return out


def format_law_report(rep: dict[str, Any]) -> str:
    p, f, full, boot = rep["prefix_fit"], rep["final"], rep["full_fit"], rep["bootstrap"]
    lo, hi = p["ceiling_interval"]
    plo, phi = f["predicted_interval"]
    pct = round(100 * boot["level"])
    first, last = rep["fit_steps"]
    return "\n".join([
        f"law R = -a*exp(H) + b, R = {rep['metric']}",
        (f"fit on steps {first}..{last} (first {rep['fit_frac']:.0%} of the run, {p['n']} points): "
         f"a = {p['a']:.4f}, b = {p['b']:.4f}, R^2 = {p['r2']:.3f}"),
        (f"  predicted ceiling (H = 0): {p['ceiling']:.4f}  [{pct}% bootstrap: {lo:.4f}, {hi:.4f}; "
         f"{boot['resamples']} resamples, seed {boot['seed']}]"),
        (f"final step {f['step']} (H = {f['entropy']:.4f}): predicted {f['predicted']:.4f} [{plo:.4f}, {phi:.4f}], "
         f"actual {f['actual']:.4f}, |error| = {f['abs_error']:.4f}"),
        (f"fit on all {full['n']} points: a = {full['a']:.4f}, b = {full['b']:.4f}, R^2 = {full['r2']:.3f}, "
         f"ceiling {full['ceiling']:.4f}"),
    ])


def format_diagnosis(rep: dict[str, Any]) -> str:
    lines = ["entropy change: predicted -lr*Cov (step k) vs measured entropy[k+1] - entropy[k]"]
    for name, a in rep["entropy_change"].items():
        form, _, smoothed = name.partition("_")
        label = {"pg": "Cov(logp, p*A) [policy gradient]", "npg": "Cov(logp, A) [natural PG]"}[form]
        if smoothed:
            label += f", moving average of {rep['smooth']}"
        lines.append(f"  {label}: pearson {a['pearson']:.3f}, sign agreement {a['sign_agreement']:.3f}, "
                     f"slope {a['slope']:.3g} ({int(a['pairs'])} steps)")
    lines.append("token quadrants (run mean): share, contribution to Cov(logp, A)")
    for q, v in rep["quadrants"].items():
        lines.append(f"  {q:<9} share {v['share']:.3f}  cov_contrib {v['cov_contrib']:+.4f}")
    e = rep["entropy"]
    for when in ("first", "last"):
        s = e[when]
        lines.append(f"token entropy, {when} step: mean {s['mean']:.3f}, p10 {s['p10']:.3f}, p50 {s['p50']:.3f}, "
                     f"p90 {s['p90']:.3f}, p99 {s['p99']:.3f}, share > threshold {s['high_frac']:.3f}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    """The report as strict JSON (NaN written as null)."""
    Path(path).write_text(json.dumps(_no_nan(report), indent=2) + "\n")


def _fit_dict(fit) -> dict[str, float]:
    return {"a": fit.a, "b": fit.b, "r2": fit.r2, "n": fit.n, "ceiling": fit.ceiling}


def _no_nan(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _no_nan(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_no_nan(v) for v in x]
    return x


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
