"""Predicted vs measured entropy change along a run (Cui et al. 2505.22617, ALGORITHMS.md §2.1).

Step k's record holds ``entropy`` (H_k, the token-mean exact entropy of step k's rollout
before its update) and ``diag/dH_pred_<form>`` (−η·Cov of that batch). The measured change
of step k's update is ΔH_k = H_{k+1} − H_k. Both entropies are measured on different
batches (step k+1 samples new prompts), so ΔH_k carries the batch-to-batch sampling noise
of the entropy mean on top of the update's effect; ``smooth`` > 1 compares centred moving
averages of both series to look through that noise (the raw comparison is ``smooth`` = 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from entrostat.diagnostics.covariance import COVARIANCE_FORMS


def pearson(x, y) -> float:
    """Pearson correlation of two equal-length sequences; NaN when either is constant or has < 2 values."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"pearson needs sequences of equal length, got {x.shape} and {y.shape}")
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    den = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    return float((dx * dy).sum()) / den if den > 0 else math.nan


def sign_agreement(predicted, measured) -> float:
    """Share of pairs whose signs agree (a zero agrees only with a zero); NaN for no pairs."""
    p, m = np.sign(np.asarray(predicted, dtype=np.float64)), np.sign(np.asarray(measured, dtype=np.float64))
    return float((p == m).mean()) if p.size else math.nan


def moving_average(x, window: int) -> np.ndarray:
    """Centred moving average over ``window`` points ('valid' part only: len(x) − window + 1 values)."""
    x = np.asarray(x, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    if window == 1 or x.size < window:
        return x if window == 1 else x[:0]
    return np.convolve(x, np.ones(window) / window, mode="valid")


def entropy_change_pairs(records: list[dict[str, Any]], form: str = "npg") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps k, predicted ΔH_k, measured H_{k+1} − H_k) over consecutive training steps of a run.

    Steps whose record lacks ``entropy`` or the prediction, or whose next step is missing, are left out.
    """
    if form not in COVARIANCE_FORMS:
        raise ValueError(f"form must be one of {COVARIANCE_FORMS}, got {form!r}")
    key = f"diag/dH_pred_{form}"
    by_step = {r["step"]: r for r in records if _finite(r.get("entropy")) and "step" in r}
    steps, pred, meas = [], [], []
    for k in sorted(by_step):
        nxt = by_step.get(k + 1)
        if nxt is None or not _finite(by_step[k].get(key)):
            continue
        steps.append(k)
        pred.append(by_step[k][key])
        meas.append(nxt["entropy"] - by_step[k]["entropy"])
    return np.array(steps, dtype=np.int64), np.array(pred, dtype=np.float64), np.array(meas, dtype=np.float64)


def entropy_change_agreement(records: list[dict[str, Any]], form: str = "npg", smooth: int = 1) -> dict[str, float]:
    """Pearson correlation, sign agreement and least-squares slope (measured ≈ slope·predicted + c)
    between predicted and measured ΔH; ``smooth`` > 1 first takes moving averages of both."""
    _, pred, meas = entropy_change_pairs(records, form)
    p, m = moving_average(pred, smooth), moving_average(meas, smooth)
    var = float(((p - p.mean()) ** 2).sum()) if p.size else 0.0
    slope = float(((p - p.mean()) * (m - m.mean())).sum()) / var if var > 0 else math.nan
    return {"pairs": float(len(p)), "pearson": pearson(p, m), "sign_agreement": sign_agreement(p, m), "slope": slope}


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
