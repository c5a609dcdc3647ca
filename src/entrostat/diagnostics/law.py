"""The entropy–performance law R = −a·exp(H) + b (Cui et al. 2505.22617), fitted by least squares.

Given x = exp(H) the law is linear in (a, b): R = b − a·x, so ordinary least squares on
(x, R) gives the fit in closed form. The predicted ceiling is R at H = 0 (entropy fully
spent): b − a. R² is 1 − SS_res / SS_tot on the fitted points. The interval is a
percentile bootstrap over (H, R) pairs: resample the pairs with replacement, refit, take
the (1 − level)/2 and (1 + level)/2 quantiles of the ceiling (and of any prediction asked
for); resamples whose H are all equal (no slope can be fitted) are dropped and counted.
Departure from the paper: Cui et al. fit on their whole runs and report the curves; they
give no interval, and their R is validation accuracy — we take held-out pass@1 where a run
has it (``runs.py`` says which was used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_POINTS = 3  # two parameters and at least one residual degree of freedom


class LawFitError(ValueError):
    """The law cannot be fitted on these points (too few, or no spread in H)."""


@dataclass(frozen=True)
class LawFit:
    """R = −a·exp(H) + b fitted on ``n`` points."""

    a: float
    b: float
    r2: float
    n: int

    @property
    def ceiling(self) -> float:
        """Predicted R at H = 0: b − a."""
        return self.b - self.a

    def predict(self, entropy):
        """R predicted at entropy H (float or array)."""
        return self.b - self.a * np.exp(np.asarray(entropy, dtype=np.float64))


def fit_entropy_law(entropy, reward) -> LawFit:
    """Least-squares fit of R = −a·exp(H) + b to paired sequences H, R (any length ≥ MIN_POINTS)."""
    h, r = np.asarray(entropy, dtype=np.float64), np.asarray(reward, dtype=np.float64)
    if h.shape != r.shape or h.ndim != 1:
        raise LawFitError(f"entropy and reward must be 1-D and of equal length, got shapes {h.shape} and {r.shape}")
    if not (np.isfinite(h).all() and np.isfinite(r).all()):
        raise LawFitError("entropy and reward must be finite")
    if h.size < MIN_POINTS:
        raise LawFitError(f"fitting R = -a*exp(H) + b needs at least {MIN_POINTS} (H, R) points, found {h.size}")
    a, b, ok = (float(v[0]) for v in _solve(np.exp(h)[None], r[None]))
    if not ok:
        raise LawFitError(f"all {h.size} points have the same entropy H = {h[0]:.4g}: the slope cannot be fitted")
    res = r - (b - a * np.exp(h))
    ss_tot = float(((r - r.mean()) ** 2).sum())
    r2 = 1.0 - float((res**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return LawFit(a=a, b=b, r2=r2, n=int(h.size))


def _solve(x: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares lines r = b − a·x of each row of x, r (k, n): (a, b, ok), each (k,).

    ok is False (a, b NaN) for a row whose x has no spread (one distinct H): no slope exists.
    """
    dx = x - x.mean(-1, keepdims=True)
    sxx = (dx * dx).sum(-1)
    ok = sxx > 1e-12 * (x * x).sum(-1)
    slope = np.where(ok, (dx * (r - r.mean(-1, keepdims=True))).sum(-1) / np.where(ok, sxx, 1.0), np.nan)
    return -slope, r.mean(-1) - slope * x.mean(-1), ok


def bootstrap_law(
    entropy, reward, n_boot: int = 1000, seed: int = 0, level: float = 0.95, predict_at=()
) -> dict[str, object]:
    """Percentile bootstrap of the law over (H, R) pairs.

    Returns {"ceiling": (lo, hi), "predict": [(lo, hi) for each H in predict_at], "a": (lo, hi),
    "b": (lo, hi), "resamples": valid resamples, "dropped": degenerate resamples}. Fixed ``seed``:
    the same inputs always give the same interval.
    """
    h, r = np.asarray(entropy, dtype=np.float64), np.asarray(reward, dtype=np.float64)
    fit_entropy_law(h, r)  # raises on bad input before resampling
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    x, at = np.exp(h), np.exp(np.asarray(predict_at, dtype=np.float64))
    idx = rng.integers(0, h.size, size=(n_boot, h.size))
    a_s, b_s, ok = _solve(x[idx], r[idx])  # all resamples at once, (n_boot,)
    if not ok.any():
        raise LawFitError(f"no bootstrap resample of the {h.size} points could be fitted")
    a_s, b_s = a_s[ok], b_s[ok]
    qs = ((1 - level) / 2, (1 + level) / 2)

    def interval(v: np.ndarray) -> tuple[float, float]:
        lo, hi = np.quantile(v, qs)
        return float(lo), float(hi)

    return {
        "ceiling": interval(b_s - a_s),
        "a": interval(a_s),
        "b": interval(b_s),
        "predict": [interval(b_s - a_s * xi) for xi in at],
        "resamples": int(ok.sum()),
        "dropped": int(n_boot - ok.sum()),
    }
