"""Run-directory diagnostics: loading errors, (H, R) pairing, the law on a prefix, the CLI commands."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from entrostat.cli import main
from entrostat.diagnostics import runs

A, B = 0.3, 0.9


def _law_run(steps=60, every=5, noise=0.0, seed=0):
    """Records of a run whose held-out pass@1 follows R = B − A·exp(H) exactly (plus optional noise)."""
    rng = np.random.default_rng(seed)
    h = {k: 1.2 * math.exp(-k / 25) for k in range(steps + 1)}  # entropy at θ_k
    recs = [{"step": 0, "eval/pass@1": B - A * math.exp(h[0])}]
    for k in range(1, steps + 1):
        r = {"step": k, "entropy": h[k - 1], "reward_mean": B - A * math.exp(h[k - 1]) + 0.01,
             "diag/dH_pred_npg": (h[k] - h[k - 1]) / 2, "diag/dH_pred_pg": 0.001 * (-1) ** k}
        r.update({f"diag/quadrant/{q}/{x}": 0.2 for q in runs.QUADRANTS for x in ("share", "cov_contrib")})
        r.update({f"diag/entropy/{x}": h[k - 1] for x in ("mean", "p10", "p50", "p90", "p99", "high_frac")})
        if k % every == 0:
            r["eval/pass@1"] = B - A * math.exp(h[k]) + rng.normal(0, noise)
        recs.append(r)
    return recs


def _write(tmp_path, records, extra_line=None):
    d = tmp_path / "run"
    d.mkdir()
    lines = [json.dumps(r) for r in records] + ([extra_line] if extra_line else [])
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return d


def test_metrics_file_name_matches_the_trainers():
    from entrostat.rundir import METRICS_FILE

    assert runs.METRICS_FILE == METRICS_FILE


def test_eval_is_paired_with_the_entropy_measured_at_the_same_parameters():
    recs = [{"step": 0, "eval/pass@1": 0.2}, {"step": 1, "entropy": 1.0, "reward_mean": 0.1},
            {"step": 2, "entropy": 0.9, "eval/pass@1": 0.3, "reward_mean": 0.2}, {"step": 3, "entropy": 0.8},
            {"step": 4, "entropy": 0.7, "eval/pass@1": 0.5}]
    metric, steps, h, r = runs.law_points(recs)
    # eval at step k (θ_k) ↔ entropy of record k+1 (measured at θ_k); the last eval takes its own record's
    assert metric == "eval/pass@1" and steps.tolist() == [0, 2, 4]
    assert h.tolist() == [1.0, 0.8, 0.7] and r.tolist() == [0.2, 0.3, 0.5]
    metric, steps, h, r = runs.law_points(recs, "reward_mean")  # a training metric: its own record
    assert steps.tolist() == [1, 2] and h.tolist() == [1.0, 0.9]


def test_default_metric_falls_back_to_training_reward():
    recs = [{"step": 1, "entropy": 1.0, "reward_mean": 0.1}]
    assert runs.law_points(recs)[0] == "reward_mean"
    with pytest.raises(runs.DiagnosticsError, match="no record has the metric 'eval/pass@4'.*reward_mean"):
        runs.law_points(recs, "eval/pass@4")


def test_prefix_fit_predicts_the_final_value_of_a_law_following_run():
    rep = runs.fit_law_on_run(_law_run(), fit_frac=1 / 3)
    assert rep["metric"] == "eval/pass@1" and rep["fit_steps"] == [0, 20]
    assert rep["prefix_fit"]["n"] == 5 and rep["prefix_fit"]["r2"] == pytest.approx(1.0)
    assert rep["prefix_fit"]["ceiling"] == pytest.approx(B - A, abs=1e-9)
    # the last evaluation (θ_60) has no later record: it is paired with the entropy at θ_59, which is
    # the only error left in the prediction
    h59, h60 = 1.2 * math.exp(-59 / 25), 1.2 * math.exp(-60 / 25)
    assert rep["final"]["step"] == 60 and rep["final"]["entropy"] == pytest.approx(h59)
    assert rep["final"]["abs_error"] == pytest.approx(A * (math.exp(h59) - math.exp(h60)), rel=1e-6)


def test_bootstrap_interval_of_a_noisy_run_contains_the_ceiling():
    rep = runs.fit_law_on_run(_law_run(steps=90, every=3, noise=0.01), fit_frac=1 / 3)
    lo, hi = rep["prefix_fit"]["ceiling_interval"]
    assert lo < B - A < hi
    plo, phi = rep["final"]["predicted_interval"]
    assert plo < rep["final"]["predicted"] < phi


def test_too_few_points_says_how_many_are_needed_and_found():
    with pytest.raises(runs.DiagnosticsError, match=r"needs at least 3 .* found 2 \(7 in the whole run\)"):
        runs.fit_law_on_run(_law_run(steps=30, every=5), fit_frac=0.2)
    with pytest.raises(runs.DiagnosticsError, match="fit-frac"):
        runs.fit_law_on_run(_law_run(), fit_frac=0)
    with pytest.raises(runs.DiagnosticsError, match="--bootstrap"):
        runs.fit_law_on_run(_law_run(), n_boot=0)
    with pytest.raises(runs.DiagnosticsError, match="--smooth"):
        runs.diagnose_run(_law_run(), smooth=0)


def test_diagnose_run_reports_both_forms():
    rep = runs.diagnose_run(_law_run(), smooth=3)
    assert rep["entropy_change"]["npg"]["pearson"] == pytest.approx(1.0)  # measured = 2 × predicted by design
    assert rep["entropy_change"]["npg"]["slope"] == pytest.approx(2.0)
    assert set(rep["entropy_change"]) == {"pg", "npg", "pg_smoothed", "npg_smoothed"}
    assert rep["quadrants"]["pos_high"]["share"] == pytest.approx(0.2)
    with pytest.raises(runs.DiagnosticsError, match="no diag/"):
        runs.diagnose_run([{"step": 1, "entropy": 1.0}])


# ---------------------------------------------------------------- bad run directories
def test_missing_and_empty_metrics_are_explained(tmp_path, capsys):
    assert main(["fit-law", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert main(["fit-law", str(tmp_path)]) == 2
    assert "has no metrics.jsonl" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text("")
    assert main(["diagnose", str(tmp_path)]) == 2
    assert "no metrics records (empty file)" in capsys.readouterr().err


def test_truncated_line_is_skipped_with_a_warning(tmp_path, capsys):
    d = _write(tmp_path, _law_run(), extra_line='{"step": 61, "entropy": 0.')
    with pytest.warns(UserWarning, match="truncated"):
        assert main(["fit-law", str(d)]) == 0
    assert "final step 60" in capsys.readouterr().out


def test_cli_too_few_points_exits_2(tmp_path, capsys):
    d = _write(tmp_path, _law_run(steps=30, every=10))
    assert main(["fit-law", str(d)]) == 2
    err = capsys.readouterr().err
    assert "needs at least 3 (entropy, eval/pass@1) pairs; found 2" in err and "Traceback" not in err


def test_cli_fit_law_and_diagnose_write_json(tmp_path, capsys):
    d = _write(tmp_path, _law_run())
    assert main(["fit-law", str(d), "--fit-frac", "0.5", "--json", str(tmp_path / "law.json")]) == 0
    out = capsys.readouterr().out
    assert "R = eval/pass@1" in out and "predicted ceiling (H = 0): 0.6000" in out
    law = json.loads((tmp_path / "law.json").read_text())
    assert law["fit_steps"] == [0, 30] and law["prefix_fit"]["ceiling"] == pytest.approx(0.6)
    assert main(["fit-law", str(d), "--metric", "reward_mean"]) == 0
    assert "R = reward_mean" in capsys.readouterr().out
    assert main(["diagnose", str(d), "--json", str(tmp_path / "diag.json")]) == 0
    assert "pearson 1.000" in capsys.readouterr().out
    assert json.loads((tmp_path / "diag.json").read_text())["entropy_change"]["npg"]["pairs"] == 59
