"""End to end on a tiny lab run: the trainer logs diag/... every step; the CLI reads the run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entrostat.cli import main
from entrostat.diagnostics import QUADRANTS
from entrostat.config.recipes import build_config
from entrostat.train import train


def test_tiny_run_logs_diagnostics_and_the_cli_reads_them(tmp_path, capsys, rewarded_lab_overrides):
    tiny_run = tmp_path / "run"
    train(build_config("grpo", [*rewarded_lab_overrides, "eval.every=1", "log.checkpoint_every=0"]), tiny_run)
    steps = [json.loads(x) for x in (tiny_run / "metrics.jsonl").read_text().splitlines()][1:]
    assert len(steps) == 4
    for r in steps:
        # rewards differ within groups, so the covariance term is not 0 and the checks below compare numbers
        assert r["zero_adv_group_frac"] < 1 and abs(r["covariance"]) > 1e-5 and r["lr"] > 0
        assert r["diag/entropy/mean"] == pytest.approx(r["entropy"], abs=1e-6)
        assert r["diag/entropy/p10"] <= r["diag/entropy/p50"] <= r["diag/entropy/p90"] <= r["diag/entropy/p99"]
        assert r["diag/cov_npg"] == pytest.approx(r["covariance"], abs=1e-6)  # same term, existing key unchanged
        assert r["diag/dH_pred_npg"] == pytest.approx(-r["lr"] * r["diag/cov_npg"], rel=1e-5)
        assert sum(r[f"diag/quadrant/{q}/share"] for q in QUADRANTS) == pytest.approx(1.0, abs=1e-5)
        assert sum(r[f"diag/quadrant/{q}/cov_contrib"] for q in QUADRANTS) == pytest.approx(r["diag/cov_npg"], abs=1e-5)

    res = subprocess.run([sys.executable, "-m", "entrostat.cli", "fit-law", str(tiny_run), "--fit-frac", "1",
                          "--json", str(tmp_path / "law.json")], check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr  # as a user runs it
    assert "R = eval/pass@1" in res.stdout and "fit on steps 0..4" in res.stdout
    assert json.loads((tmp_path / "law.json").read_text())["prefix_fit"]["n"] == 5
    assert main(["fit-law", str(tiny_run)]) == 2
    err = capsys.readouterr().err
    assert "needs at least 3" in err and "found 2" in err
    assert main(["diagnose", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "(3 steps)" in out and "zero_adv" in out
