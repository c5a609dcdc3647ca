"""A controller that needs an auxiliary rollout, registered from outside the package in this one file.

It declares its extra samples (``AuxRequest``) and a composition of its own; the trainer fulfils
the declaration with no code for it. The composition records what it was handed, so the test
checks that the declared temperature, prompt share and weight reached the step.
"""

from __future__ import annotations

import math

import pytest
import torch

from entrostat.config.recipes import build_config
from entrostat.control.base import CONTROLLERS, Controller
from entrostat.rollout.auxiliary import AUX_COMPOSITIONS, AuxOutcome, AuxRows
from entrostat.train.trainer import Trainer
from entrostat.types import AuxRequest

SEEN: list[dict] = []


@AUX_COMPOSITIONS.register("toy_every_row")
def every_row(request, main, aux, pad_token_id):
    """Every auxiliary row counts, in an additive term of the request's weight."""
    SEEN.append({"temperature": request.temperature, "aux_rows": aux.batch_size, "aux_temps": aux.temperature.unique().tolist()})
    return AuxOutcome(main, extra=AuxRows(aux, torch.ones(aux.batch_size, dtype=torch.bool), request.weight),
                      stats={"aux/toy_rows": float(aux.batch_size)})


@CONTROLLERS.register("toy_hot_samples")
class ToyHotSamples(Controller):
    """Asks for half of the prompts resampled hot, with a weight that grows each step."""

    name = "toy_hot_samples"
    actuators = ("aux_temperature",)
    _STATE = ("steps_seen",)

    def __init__(self, temperature: float = 1.7):
        self.temperature, self.steps_seen = temperature, 0

    def value(self) -> dict[str, float]:
        return {"aux_temperature": self.temperature}

    def aux_request(self) -> AuxRequest:
        return AuxRequest(temperature=self.temperature, prompt_fraction=0.5, compose="toy_every_row",
                          weight=0.1 * (self.steps_seen + 1))

    def update(self, stats) -> None:
        self.steps_seen += 1


def test_toy_controller_gets_its_auxiliary_rollout(tmp_path, tiny_lab_overrides):
    SEEN.clear()
    over = tiny_lab_overrides + ["control.name=toy_hot_samples", "control.kwargs={temperature: 1.7}"]
    tr = Trainer(build_config(None, over), tmp_path)
    recs = [tr.step() for _ in range(2)]
    prompts, group = tr.cfg.rollout.prompts_per_step, tr.cfg.rollout.group_size
    assert [s["temperature"] for s in SEEN] == [1.7, 1.7]
    assert all(s["aux_rows"] == prompts // 2 * group and s["aux_temps"] == [pytest.approx(1.7)] for s in SEEN)
    for r in recs:
        assert r["aux/toy_rows"] == prompts // 2 * group and r["aux/temperature"] == 1.7
        assert r["control/aux_temperature"] == 1.7 and math.isfinite(r["loss"])
    # the additive term of every auxiliary row: −weight · Σ_t logπ / rows > 0, and its weight grew
    assert 0 < recs[0]["aux_loss"] and recs[1]["aux_positive_frac"] == 1.0
    assert recs[1]["aux_loss"] / recs[0]["aux_loss"] > 1.5  # weight 0.2 vs 0.1 on similar rows
