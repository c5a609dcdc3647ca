"""The asymmetry experiment runs end to end on a tiny lab model and measures real changes."""

from __future__ import annotations

import math

from entrostat.experiments.asymmetry import AsymmetrySettings, run_asymmetry

TINY = {"steps": 8, "batch_size": 32, "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}}


def test_asymmetry_cells_measure_entropy_changes():
    s = AsymmetrySettings(prompts=8, group_size=4, probe_prompts=8, lr=1.0)
    rows = run_asymmetry(0, s, temperatures=(0.8, 1.5), lab_recipe=TINY)
    assert [(r["temperature"], r["sign"]) for r in rows] == [(0.8, "positive"), (0.8, "negative"),
                                                            (1.5, "positive"), (1.5, "negative")]
    assert all(r["n_rows"] + o["n_rows"] == 32 for r, o in zip(rows[::2], rows[1::2]))
    measured = [r["entropy_change"] for r in rows if r["n_rows"] > 0]
    assert measured and all(math.isfinite(x) and x != 0.0 for x in measured)
    assert all(math.isnan(r["entropy_change"]) for r in rows if r["n_rows"] == 0)
