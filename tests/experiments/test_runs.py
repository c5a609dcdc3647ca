"""Run-group experiments: runs are written per label and seed, reused, and scored against targets."""

from __future__ import annotations

import pytest

from entrostat.experiments.runs import run_group, tracking_table
from entrostat.report.plots import trajectories_figure


def test_run_group_tracking_and_figure(tmp_path, tiny_lab_overrides):
    over = tiny_lab_overrides + ["trainer.steps=3"]
    specs = [("plain", "grpo", []), ("od", "flex_od", ["trainer.mini_batches=2"])]
    runs = run_group(tmp_path, specs, [0], over)
    assert [len(runs[k][0]) for k in ("plain", "od")] == [3, 3]
    again = run_group(tmp_path, specs, [0], over + ["trainer.threads=1"])  # reused, not retrained
    assert again["plain"][0] == runs["plain"][0]
    with pytest.raises(ValueError, match=r"other settings \(optim.lr"):
        run_group(tmp_path, specs[:1], [0], over + ["optim.lr=0.5"])
    metrics = tmp_path / "plain" / "seed-0" / "metrics.jsonl"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:-1]))  # a run stopped early
    with pytest.raises(ValueError, match="unfinished run"):
        run_group(tmp_path, specs[:1], [0], over)
    table = tracking_table(runs, {"plain": 1.0, "od": {"kind": "linear", "start": 2.0, "end": 1.0}})
    assert {r["label"] for r in table} == {"plain", "od"} and all(r["tracking_error"] >= 0 for r in table)
    png = trajectories_figure(runs, {"plain": 1.0}, tmp_path / "t.png", "t")
    assert png.stat().st_size > 1000
