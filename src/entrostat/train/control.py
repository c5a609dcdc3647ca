"""Wiring controllers into the trainer: build them, apply their actuators, feed them step stats.

The trainer is the one place that updates controllers (ARCHITECTURE.md); this module
maps actuator names onto the loss configuration of the next step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from entrostat.config.base import ConfigError
from entrostat.control import build_controller
from entrostat.control.base import Controller
from entrostat.losses.config import LossConfig

LOSS_ACTUATORS = ("eps_low", "eps_high", "beta1", "beta2", "entropy_coef", "clip_cov_ratio", "kl_cov_ratio")
FLEX_ACTUATORS = {"flex_weight_high": "weight_high", "flex_weight_low": "weight_low"}
AUX_ACTUATORS = ("aux_temperature", "aux_alpha", "aux_keep_frac")


def build_controllers(cfg: Any) -> dict[str, Controller]:
    """{name: controller} from a ControlConfig (empty for name 'none')."""
    if cfg.name == "none":
        return {}
    return {cfg.name: build_controller(cfg.name, **cfg.kwargs)}


def controller_values(controllers: Mapping[str, Controller]) -> dict[str, float]:
    out: dict[str, float] = {}
    for ctrl in controllers.values():
        out.update(ctrl.value())
    return out


def apply_actuators(loss: LossConfig, values: Mapping[str, float]) -> LossConfig:
    """``loss`` with the actuator values of this step (unknown actuators raise)."""
    direct = {k: float(v) for k, v in values.items() if k in LOSS_ACTUATORS}
    flex = {FLEX_ACTUATORS[k]: float(v) for k, v in values.items() if k in FLEX_ACTUATORS}
    unknown = set(values) - set(direct) - set(FLEX_ACTUATORS) - set(AUX_ACTUATORS)  # aux: see Trainer.auxiliary
    if unknown:
        raise ConfigError(f"the trainer cannot drive actuator(s) {sorted(unknown)}")
    if not direct and not flex:
        return loss
    return dataclasses.replace(loss, **direct, flex=dataclasses.replace(loss.flex, **flex))


def update_controllers(controllers: Mapping[str, Controller], record: Mapping[str, float], total_steps: int) -> dict[str, float]:
    """Feed each controller the step's global stats; returns their signals for the metrics record."""
    stats = {"step": record["step"], "total_steps": total_steps, "entropy": record["entropy"], "nll": record["nll"],
             "covariance": record["covariance"], "lr": record.get("lr", float("nan"))}
    out: dict[str, float] = {}
    for name, ctrl in controllers.items():
        ctrl.update(stats)
        out.update({f"control/{name}/{k}": float(v) for k, v in ctrl.signals().items()})
    return out
