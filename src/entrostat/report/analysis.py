"""The numbers a report shows: the per-run summary, and the entropy-mechanism diagnostics put in figure form.

The diagnostics themselves — pairing an evaluation with the entropy of the same
policy, predicted vs measured entropy change, the law R = −a·e^H + b (Cui et al.
2505.22617) and its bootstrap — are ``entrostat.diagnostics``' (imported lazily);
this module only selects and packages them for ``report.html``.
"""

from __future__ import annotations

import math
from typing import Any

from entrostat.control.metrics import tracking_metrics
from entrostat.report.runs import Run, pass_at_k, series

FINAL_WINDOW = 10  # "final" entropy / reward: the mean of the last 10 logged steps


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def target_keys(records: list[dict[str, Any]]) -> list[str]:
    """``control/<controller>/target`` keys present in the records, sorted."""
    return sorted({k for r in records for k in r if k.startswith("control/") and k.endswith("/target")})


def tracking_error(records: list[dict[str, Any]]) -> float | None:
    """Mean |H − H*|/H* over the second half of the steps that logged a target (first controller with one)."""
    for key in target_keys(records):
        h, t = [], []
        for r in records:
            hv, tv = r.get("entropy"), r.get(key)
            if _finite(hv) and _finite(tv) and tv > 0:
                h.append(float(hv))
                t.append(float(tv))
        if h:
            return tracking_metrics(h, t)["tracking_error"]
    return None


def summarize(run: Run) -> dict[str, Any]:
    """One summary row; a quantity the run did not log is None."""
    recs = run.records
    _, entropy = series(recs, "entropy")
    _, reward = series(recs, "reward_mean")
    _, pass1 = series(recs, "eval/pass@1")
    _, wall = series(recs, "time/step")
    evals = [r for r in recs if pass_at_k(r)]
    last_curve = pass_at_k(evals[-1]) if evals else {}
    k_max = max(last_curve) if last_curve else None
    return {
        "run": run.name,
        "recipe": run.recipe,
        "steps": max((int(r["step"]) for r in recs if "step" in r), default=None),
        "entropy": _mean(entropy[-FINAL_WINDOW:]),
        "reward": _mean(reward[-FINAL_WINDOW:]),
        "pass@1 best": max(pass1) if pass1 else None,
        "pass@1 final": pass1[-1] if pass1 else None,
        "k": k_max,
        "pass@k": last_curve[k_max] if k_max is not None else None,
        "tracking error": tracking_error(recs),
        "wall time (s)": sum(wall) if wall else None,
    }


SUMMARY_COLUMNS = ("run", "recipe", "steps", "entropy", "reward", "pass@1 best", "pass@1 final", "pass@k",
                   "tracking error", "wall time (s)")


def format_cell(row: dict[str, Any], col: str) -> str:
    """The text of one summary cell (shared by the terminal table and the HTML page)."""
    v = row.get(col)
    if v is None:
        return "–"
    if col == "pass@k":
        return f"{v:.3f} (k={row['k']})"
    if col == "wall time (s)":
        return f"{v:.1f}"
    if col == "tracking error":
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def format_table(rows: list[dict[str, Any]]) -> str:
    """The summary rows as an aligned text table (text left, numbers right)."""
    cells = [[format_cell(r, c) for c in SUMMARY_COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(SUMMARY_COLUMNS)]
    left = {"run", "recipe"}

    def line(items):
        return "  ".join(s.ljust(w) if c in left else s.rjust(w) for s, w, c in zip(items, widths, SUMMARY_COLUMNS))

    out = [line(SUMMARY_COLUMNS), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    return "\n".join(line.rstrip() for line in out)


def entropy_change_series(records: list[dict[str, Any]]) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """{covariance label: (steps k, predicted ΔH_k, measured H_{k+1} − H_k)} of a run, at least two pairs each.

    Runs with the ``diag/dH_pred_<form>`` keys (``entrostat.diagnostics``; η counts every
    optimizer step on the rollout) give one series per form; older runs fall back to
    −lr·``covariance`` (the natural-gradient form, one optimizer step). Pairing is
    ``diagnostics.entropy_change.entropy_change_pairs``.
    """
    from entrostat.diagnostics.covariance import COVARIANCE_FORMS
    from entrostat.diagnostics.entropy_change import entropy_change_pairs

    out = {}
    for form in COVARIANCE_FORMS:
        steps, pred, meas = entropy_change_pairs(records, form)
        if len(steps) >= 2:
            out[f"diag/cov_{form}"] = (steps.tolist(), pred.tolist(), meas.tolist())
    if not out:
        derived = [{**r, "diag/dH_pred_npg": -r["lr"] * r["covariance"]} if _finite(r.get("lr")) and _finite(
            r.get("covariance")) else r for r in records]
        steps, pred, meas = entropy_change_pairs(derived, "npg")
        if len(steps) >= 2:
            out["covariance"] = (steps.tolist(), pred.tolist(), meas.tolist())
    return out


def agreement(pred: list[float], meas: list[float]) -> dict[str, float]:
    """Pearson r and sign agreement of predicted vs measured ΔH (``diagnostics.entropy_change``)."""
    from entrostat.diagnostics.entropy_change import pearson, sign_agreement

    return {"pairs": float(len(pred)), "pearson": pearson(pred, meas), "sign_agreement": sign_agreement(pred, meas)}


def law_analysis(records: list[dict[str, Any]], grid: list[float]) -> tuple[dict[str, Any] | None, str]:
    """The law R = −a·e^H + b on a run's (entropy, held-out pass@1) pairs, for the figure and table.

    Returns (result or None, why not). The result holds the points ``h, r``, the fit on all
    pairs (``a, b, r2, ceiling, n``), its 95 % bootstrap band over ``grid`` and ceiling
    interval, and — where the first third of the run has enough pairs — the prefix fit's
    prediction of the final pass@1 (``diagnostics.runs.fit_law_on_run``; else ``prefix``
    is None and ``prefix_why`` says why). Pairing and fitting live in ``entrostat.diagnostics``.
    """
    from entrostat.diagnostics.law import LawFitError, bootstrap_law, fit_entropy_law
    from entrostat.diagnostics.runs import DiagnosticsError, fit_law_on_run, law_points

    if not any(_finite(r.get("eval/pass@1")) for r in records):
        return None, "no held-out pass@1"
    _, _, h, r = law_points(records, "eval/pass@1")
    if not len(h):
        return None, "no entropy to pair its held-out pass@1 with"
    try:
        fit = fit_entropy_law(h, r)
        boot = bootstrap_law(h, r, predict_at=grid)
    except LawFitError as exc:
        return {"h": h.tolist(), "r": r.tolist(), "fit": None}, str(exc)
    out = {"h": h.tolist(), "r": r.tolist(), "band": boot["predict"], "ceiling_interval": boot["ceiling"],
           "fit": {"a": fit.a, "b": fit.b, "r2": fit.r2, "ceiling": fit.ceiling, "n": fit.n},
           "prefix": None, "prefix_why": ""}
    try:
        out["prefix"] = fit_law_on_run(records, metric="eval/pass@1", n_boot=200)
    except DiagnosticsError as exc:
        out["prefix_why"] = str(exc)
    return out, ""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 1e300
