"""Predicted vs measured entropy change along a run: alignment, Pearson, sign agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from entrostat.diagnostics import (
    entropy_change_agreement,
    entropy_change_pairs,
    moving_average,
    pearson,
    sign_agreement,
)


def _records(h, pred):
    return [{"step": 0, "eval/pass@1": 0.1}] + [
        {"step": k + 1, "entropy": hk, "diag/dH_pred_npg": pk, "diag/dH_pred_pg": pk / 2} for k, (hk, pk) in enumerate(zip(h, pred))
    ]


def test_measured_change_of_step_k_is_next_entropy_minus_this_one():
    recs = _records([1.0, 0.9, 0.95, 0.7], [-0.2, 0.1, -0.4, -0.3])
    steps, pred, meas = entropy_change_pairs(recs, "npg")
    assert steps.tolist() == [1, 2, 3]  # the last step has no next entropy; step 0 (eval only) has none
    assert pred.tolist() == [-0.2, 0.1, -0.4]
    np.testing.assert_allclose(meas, [-0.1, 0.05, -0.25])
    assert entropy_change_pairs(recs, "pg")[1].tolist() == [-0.1, 0.05, -0.2]


def test_missing_steps_are_skipped_not_misaligned():
    recs = _records([1.0, 0.9, 0.8, 0.7], [-0.1, -0.1, -0.1, -0.1])
    del recs[2]  # step 2 lost: neither 1→2 nor 2→3 can be measured
    steps, _, meas = entropy_change_pairs(recs)
    assert steps.tolist() == [3] and meas.tolist() == pytest.approx([-0.1])


def test_pearson_and_sign_agreement_by_hand():
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933, abs=1e-4)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3])) and math.isnan(pearson([1], [2]))
    assert sign_agreement([-1, 2, -3, 0], [-0.5, -1, -2, 0]) == 0.75


def test_agreement_of_a_run_whose_prediction_is_exact_up_to_scale():
    pred = np.array([-0.3, 0.1, -0.2, 0.05, -0.4, 0.2])
    h = np.concatenate([[1.0], 1.0 + np.cumsum(10 * pred)])  # measured = 10 × predicted
    a = entropy_change_agreement(_records(h, list(pred) + [0.0]))
    assert a["pairs"] == 6 and a["pearson"] == pytest.approx(1.0) and a["sign_agreement"] == 1.0
    assert a["slope"] == pytest.approx(10.0)


def test_moving_average():
    assert moving_average([1, 2, 3, 4], 2).tolist() == [1.5, 2.5, 3.5]
    assert moving_average([1, 2], 1).tolist() == [1, 2] and moving_average([1, 2], 3).size == 0
    with pytest.raises(ValueError, match="window"):
        moving_average([1, 2], 0)


def test_unknown_form_is_refused():
    with pytest.raises(ValueError, match="form must be one of"):
        entropy_change_pairs([], "adam")
