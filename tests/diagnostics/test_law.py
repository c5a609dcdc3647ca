"""The law R = −a·exp(H) + b: recovery of known (a, b), R², bootstrap coverage, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from entrostat.diagnostics import LawFitError, bootstrap_law, fit_entropy_law

A, B = 0.3, 0.9  # true law; ceiling B − A = 0.6
H = np.linspace(1.2, 0.2, 30)


def test_recovers_exact_law():
    fit = fit_entropy_law(H, B - A * np.exp(H))
    assert (fit.a, fit.b, fit.ceiling) == pytest.approx((A, B, B - A), abs=1e-10)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 30
    assert fit.predict(0.0) == pytest.approx(B - A)


def test_recovers_law_from_noisy_points():
    rng = np.random.default_rng(0)
    r = B - A * np.exp(H) + rng.normal(0, 0.01, H.size)
    fit = fit_entropy_law(H, r)
    assert fit.a == pytest.approx(A, abs=0.02) and fit.b == pytest.approx(B, abs=0.04)
    assert 0.9 < fit.r2 < 1.0


def test_bootstrap_interval_contains_the_truth():
    rng = np.random.default_rng(1)
    r = B - A * np.exp(H) + rng.normal(0, 0.02, H.size)
    boot = bootstrap_law(H, r, n_boot=1000, seed=0, predict_at=[0.1])
    lo, hi = boot["ceiling"]
    assert lo < B - A < hi and hi - lo < 0.2
    plo, phi = boot["predict"][0]
    assert plo < B - A * np.exp(0.1) < phi
    assert boot["resamples"] + boot["dropped"] == 1000
    assert bootstrap_law(H, r, n_boot=200, seed=3) == bootstrap_law(H, r, n_boot=200, seed=3)  # seeded


def test_bootstrap_coverage_is_near_nominal():
    rng = np.random.default_rng(2)
    hits = 0
    for _ in range(40):
        r = B - A * np.exp(H) + rng.normal(0, 0.03, H.size)
        lo, hi = bootstrap_law(H, r, n_boot=300, seed=int(rng.integers(1 << 30)))["ceiling"]
        hits += lo < B - A < hi
    assert hits >= 32  # nominal 95% of 40 = 38; the percentile bootstrap under-covers a little at n = 30


def test_too_few_points_says_how_many():
    with pytest.raises(LawFitError, match="needs at least 3 .* found 2"):
        fit_entropy_law([1.0, 0.5], [0.1, 0.3])


def test_no_spread_in_entropy_is_explained():
    with pytest.raises(LawFitError, match="same entropy"):
        fit_entropy_law([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])


def test_bad_arrays_are_refused():
    with pytest.raises(LawFitError, match="equal length"):
        fit_entropy_law([1.0, 0.5, 0.2], [0.1, 0.3])
    with pytest.raises(LawFitError, match="finite"):
        fit_entropy_law([1.0, float("nan"), 0.2], [0.1, 0.3, 0.4])
