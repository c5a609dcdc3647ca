"""The HTML report and `entrostat report | compare`: figures, notes for what is missing, bad inputs."""

from __future__ import annotations

import re

import pytest

from entrostat.cli import main

FIGURES = {"entropy", "reward_mean", "eval_pass_at_1", "control", "response_length", "entropy_change", "law", "passk"}


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_page_overlays_runs_and_notes_what_is_missing(tmp_path, make_run, records):
    thermo = make_run("thermo", records(30, 10, target=1.0), recipe="thermostat")
    plain = make_run("plain", records(30, 15))
    few = make_run("few", records(8, 8))  # evaluations at steps 0 and 8 only: two law points
    out = tmp_path / "site" / "report.html"
    assert main(["report", str(thermo), str(plain), str(few), "-o", str(out)]) == 0
    page = out.read_text()
    srcs = _images(page)
    assert {s.removeprefix("report_files/").removesuffix(".png") for s in srcs} == FIGURES
    assert all((out.parent / s).is_file() and (out.parent / s).stat().st_size > 5000 for s in srcs)
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "Law fit, run few: fitting R = -a*exp(H) + b needs at least 3 (H, R) points, found 2" in page
    for name in ("thermo", "plain", "few"):
        assert f"<td>{name}</td>" in page
    assert "54.0%" in page  # the thermostat run's tracking error in the summary table


def test_missing_quantities_get_a_note_not_an_empty_panel(tmp_path, make_run, records):
    recs = [{k: v for k, v in r.items() if k not in ("response_length", "covariance")} for r in records(6, 100)]
    out = tmp_path / "r.html"
    assert main(["report", str(make_run("bare", recs)), "-o", str(out)]) == 0
    page = out.read_text()
    assert {s.removeprefix("r_files/").removesuffix(".png") for s in _images(page)} == {
        "entropy", "reward_mean", "eval_pass_at_1", "law", "passk"}
    assert "no run logged <code>response_length</code>" in page and "Controller signals: no run logged" in page
    assert "Predicted vs measured entropy change: no run" in page


def test_compare_prints_the_summary_table(make_run, capsys, records):
    assert main(["compare", str(make_run("thermo", records(30, 10, target=1.0))), str(make_run("b"))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["run", "recipe", "steps"] and len(lines) == 4
    assert lines[2].split()[:5] == ["thermo", "grpo", "30", "1.490", "0.255"] and "54.0%" in lines[2]


def test_bad_inputs(tmp_path, make_run, capsys):
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    assert main(["report", str(empty), "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "has no metrics.jsonl" in err
    assert main(["compare", str(make_run("ok")), str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    cut = make_run("cut")
    with open(cut / "metrics.jsonl", "a") as f:
        f.write('{"step": 31, "entro')  # a run killed mid-write
    with pytest.warns(UserWarning, match="truncated"):
        assert main(["compare", str(cut)]) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[2] == "30"


def test_reference_evaluations_join_the_passk_figure(tmp_path, make_run, capsys):
    import json

    from entrostat.report.html import write_report

    base = tmp_path / "base_eval.json"
    base.write_text(json.dumps({"settings": {"n": 1024, "temperature": 1.0},
                                "metrics": {"pass@1": 0.2, "pass@1024": 1.0, "mean@n": 0.2}}))
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    run = make_run("grpo")
    with pytest.warns(UserWarning, match="not readable as JSON"):
        with pytest.warns(UserWarning, match="junk.json: no pass@k values in it; not drawn"):
            out = write_report([run], tmp_path / "r.html", [base, junk])
    page = out.read_text()
    assert "passk" in " ".join(_images(page)) and "--eval" in page
    assert main(["report", str(run), "--eval", str(tmp_path / "absent.json"), "-o", str(tmp_path / "y.html")]) == 2
    assert "absent.json: no such file" in capsys.readouterr().err


def test_read_eval_file_labels_the_curve(tmp_path):
    import json

    from entrostat.report.runs import read_eval_file

    f = tmp_path / "eval_base.json"
    f.write_text(json.dumps({"step": 0, "settings": {"n": 64, "temperature": 0.8},
                             "metrics": {"pass@1": 0.25, "pass@4": 0.5, "pass@64": 0.9}}))
    assert read_eval_file(f) == ("eval_base.json (step 0, n=64, T=0.8)", {1: 0.25, 4: 0.5, 64: 0.9})
    f.write_text(json.dumps({"metrics": {"mean@n": 0.3}}))
    assert read_eval_file(f) is None


@pytest.mark.slow  # trains two tiny lab runs (the tiny base model is built once per session)
def test_report_of_two_tiny_real_runs(tmp_path, capsys, tiny_lab_overrides):
    runs = [tmp_path / "g", tmp_path / "c"]
    assert main(["train", "grpo", *tiny_lab_overrides, "--run-dir", str(runs[0])]) == 0
    assert main(["train", "clip_cov", *tiny_lab_overrides, "trainer.seed=1", "--run-dir", str(runs[1])]) == 0
    out = tmp_path / "rep.html"
    assert main(["report", *map(str, runs), "-o", str(out)]) == 0
    page = out.read_text()
    figs = {s.removeprefix("rep_files/").removesuffix(".png") for s in _images(page)}
    assert {"entropy", "reward_mean", "eval_pass_at_1", "response_length", "entropy_change", "law", "passk"} <= figs
    assert "<td>grpo</td>" in page and "<td>clip_cov</td>" in page
    capsys.readouterr()
    assert main(["compare", *map(str, runs)]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert [r.split()[:3] for r in rows] == [["g", "grpo", "4"], ["c", "clip_cov", "4"]]
