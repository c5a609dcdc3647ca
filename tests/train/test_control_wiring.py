"""Controllers in the trainer: actuators reach the loss config, signals reach the metrics."""

from __future__ import annotations

import pytest

from entrostat.config.base import ConfigError
from entrostat.losses.config import LossConfig
from entrostat.config.recipes import build_config
from entrostat.train.control import apply_actuators
from entrostat.train.trainer import Trainer


def test_apply_actuators_sets_loss_and_flex_fields():
    cfg = apply_actuators(LossConfig(), {"entropy_coef": 0.01, "eps_high": 0.3, "flex_weight_low": 0.25})
    assert (cfg.entropy_coef, cfg.eps_high, cfg.flex.weight_low, cfg.flex.weight_high) == (0.01, 0.3, 0.25, 1.0)
    assert LossConfig().entropy_coef == 0.0  # the base config is never mutated
    with pytest.raises(ConfigError, match="unknown actuator .nonsense."):
        apply_actuators(LossConfig(), {"nonsense": 1.0})


def test_controller_drives_the_next_step(tmp_path, tiny_lab_overrides):
    over = tiny_lab_overrides + ["control.name=adaptive_entropy", "control.kwargs={target: 5.0, delta: 0.01, c_max: 0.05}"]
    tr = Trainer(build_config(None, over), tmp_path)
    coefs = []
    for _ in range(3):
        rec = tr.step()
        coefs.append(rec["control/entropy_coef"])
    assert coefs == pytest.approx([0.0, 0.01, 0.02])  # H < H* = 5: the coefficient climbs by Δ each step
    assert tr.updater.loss_cfg.entropy_coef == pytest.approx(0.02)
