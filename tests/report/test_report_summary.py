"""Summary numbers, pairing conventions, the law fit and the aligned table, on synthetic metrics."""

from __future__ import annotations

import json
import math

import pytest

from entrostat.report import analysis as an
from entrostat.report.runs import load_run, load_runs


def test_summary_row_by_hand(make_run, records):
    run = load_run(make_run("thermo", records(30, 10, target=1.0), recipe="thermostat"))
    s = an.summarize(run)
    assert s["run"] == "thermo" and s["recipe"] == "thermostat" and s["steps"] == 30
    assert s["entropy"] == pytest.approx(2.0 - 0.02 * 25.5)  # mean over steps 21..30
    assert s["reward"] == pytest.approx(0.255)
    assert s["pass@1 best"] == pytest.approx(0.4) and s["pass@1 final"] == pytest.approx(0.4)
    assert (s["k"], s["pass@k"]) == (4, pytest.approx(0.6))
    assert s["tracking error"] == pytest.approx(1.0 - 0.02 * 23)  # mean |H − 1| / 1 over steps 16..30
    assert s["wall time (s)"] == pytest.approx(15.0)


def test_summary_without_eval_or_controller(make_run, records):
    recs = [r for r in records(12, 100) if "entropy" in r]  # no evaluation records at all
    s = an.summarize(load_run(make_run("plain", recs)))
    assert s["pass@1 best"] is None and s["pass@k"] is None and s["tracking error"] is None
    assert s["entropy"] == pytest.approx(sum(2.0 - 0.02 * k for k in range(3, 13)) / 10)
    assert "–" in an.format_table([s])


def test_table_columns_are_aligned(make_run, records):
    rows = [an.summarize(load_run(make_run("a-long-run-name", records(30, 10, target=1.0)))),
            an.summarize(load_run(make_run("b", records(8, 4))))]
    lines = an.format_table(rows).splitlines()
    assert len(lines) == 4 and lines[2].startswith("a-long-run-name") and lines[3].startswith("b ")
    # every column ends (numbers, right-aligned) or starts (text) at the same offset on every line
    dashes = lines[1].split("  ")
    ends = [sum(len(d) + 2 for d in dashes[: i + 1]) - 2 for i in range(len(dashes))]
    for line in (lines[0], lines[2], lines[3]):
        for i, end in enumerate(ends[2:], 2):
            assert line[end - 1] != " " and (end == len(line) or line[end] == " "), (line, i)
    assert "54.0%" in lines[2] and "0.600 (k=4)" in lines[2] and "15.0" in lines[2]


def test_entropy_change_falls_back_to_lr_times_covariance(records):
    recs = [r for r in records(6, 100) if r["step"] != 4]  # a gap: updates 3 and 4 have no measured change
    assert list(an.entropy_change_series(recs)) == ["covariance"]  # no diag/... keys: −lr·covariance
    steps, pred, meas = an.entropy_change_series(recs)["covariance"]
    assert steps == [1, 2, 5]
    assert pred == pytest.approx([-0.1 * 0.05] * 3) and meas == pytest.approx([-0.02] * 3)
    stats = an.agreement(pred, meas)
    assert stats["pairs"] == 3 and stats["sign_agreement"] == 1.0 and math.isnan(stats["pearson"])  # constant


def test_entropy_change_prefers_the_diagnostics_keys(records):
    recs = records(5, 100)
    for r in recs[1:]:
        r.update({"diag/dH_pred_pg": -0.001 * r["step"], "diag/dH_pred_npg": 0.002})
    series = an.entropy_change_series(recs)
    assert list(series) == ["diag/cov_pg", "diag/cov_npg"]
    assert series["diag/cov_pg"] == ([1, 2, 3, 4], pytest.approx([-0.001, -0.002, -0.003, -0.004]),
                                     pytest.approx([-0.02] * 4))


def test_law_analysis_fits_exact_points_and_explains_too_few(records):
    recs = records(30, 10)  # evaluations at 0, 10, 20, 30 paired with the entropy of records 1, 11, 21, 30
    for r in recs:
        if "eval/pass@1" in r:
            h = 2.0 - 0.02 * min(r["step"] + 1, 30)
            r["eval/pass@1"] = -0.2 * math.exp(h) + 1.9
    res, why = an.law_analysis(recs, [0.0, 1.0, 2.0])
    assert why == "" and res["h"] == pytest.approx([1.98, 1.78, 1.58, 1.40])
    fit = res["fit"]
    assert (fit["a"], fit["b"], fit["r2"], fit["ceiling"]) == (pytest.approx(0.2), pytest.approx(1.9),
                                                               pytest.approx(1.0), pytest.approx(1.7))
    assert len(res["band"]) == 3 and res["prefix"] is None and "needs at least 3" in res["prefix_why"]
    res, why = an.law_analysis(records(8, 8), [0.0, 1.0])  # evaluations at 0 and 8 only
    assert res["fit"] is None and "found 2" in why
    assert an.law_analysis([r for r in recs if "eval/pass@1" not in r], [0.0]) == (None, "no held-out pass@1")


def test_names_collide_then_recipe_and_seed(tmp_path, make_run):
    a = make_run("x/run", recipe="grpo", seed=0)
    b = make_run("y/run", recipe="clip_cov", seed=1)
    c = make_run("z/other", recipe="grpo", seed=0)
    assert [r.name for r in load_runs([a, b, c])] == ["grpo seed 0", "clip_cov seed 1", "other"]
    d = make_run("w/run", recipe="grpo", seed=0)
    names = [r.name for r in load_runs([a, d])]
    assert len(set(names)) == 2 and all(n.startswith("grpo seed 0 (") for n in names)
    assert [r.name for r in load_runs([c, c])] == ["other #1", "other #2"]


def test_eval_json_files_are_read(make_run):
    d = make_run("r")
    (d / "eval-final.json").write_text(json.dumps({"n": 8, "pass@1": 0.3, "pass@8": 0.9, "mean@n": 0.3}))
    (d / "eval-nested.json").write_text(json.dumps({  # the layout `entrostat eval --out` writes
        "target": "r", "step": 30, "settings": {"n": 4, "ks": [1, 4], "temperature": 0.8},
        "metrics": {"pass@1": 0.2, "pass@4": 0.5, "mean@n": 0.2}}))
    (d / "eval-other.json").write_text(json.dumps({"note": "no pass@k here"}))
    (d / "eval-broken.json").write_text('{"pass@1": 0.')
    with pytest.warns(UserWarning, match="eval-broken.json: not readable"):
        run = load_run(d)
    assert run.evals == [("eval-final.json", {1: 0.3, 8: 0.9}),
                         ("eval-nested.json (step 30, n=4, T=0.8)", {1: 0.2, 4: 0.5})]
    assert run.eval_settings == ""  # the synthetic config.yaml has no eval section
