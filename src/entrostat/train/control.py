"""Wiring controllers into a host's step: build them, read their actuators and declared auxiliary
rollouts, feed them the step's global statistics.

The host (our trainer, or an integration) is the one place that updates controllers (ARCHITECTURE.md);
what an actuator does to the loss is ``control.base.apply_actuators``.
"""

from __future__ import annotations

from typing import Any, Mapping

from entrostat.control import build_controller
from entrostat.control.base import Controller, apply_actuators
from entrostat.types import AuxRequest, RolloutBatch, ShapingInputs

__all__ = ["apply_actuators", "aux_requests", "build_controllers", "controller_values", "score_temperatures",
           "shape_advantages", "update_controllers"]


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


def aux_requests(controllers: Mapping[str, Controller]) -> list[AuxRequest]:
    """The auxiliary rollouts the controllers declare for the next step."""
    return [r for r in (ctrl.aux_request() for ctrl in controllers.values()) if r is not None]


def score_temperatures(controllers: Mapping[str, Controller]) -> tuple[float, ...]:
    """The temperatures at which the controllers want the next main batch's log-probs scored (distinct, in order)."""
    temps = [r.temperature for r in (ctrl.score_request() for ctrl in controllers.values()) if r is not None]
    return tuple(dict.fromkeys(temps))


def shape_advantages(controllers: Mapping[str, Controller], batch: RolloutBatch,
                     tempered: Mapping[float, Any]) -> tuple[RolloutBatch, dict[str, float]]:
    """``batch`` with the advantages of every controller that declared a score request, in order, and their
    figures as ``control/<name>/...``."""
    out: dict[str, float] = {}
    for name, ctrl in controllers.items():
        req = ctrl.score_request()
        if req is not None:
            inputs = ShapingInputs(batch.advantages, batch.rewards, batch.completion_mask, batch.old_logprobs,
                                   tempered[req.temperature])
            advantages, figures = ctrl.shape_advantages(inputs)
            batch = batch.with_(advantages=advantages)
            out.update({f"control/{name}/{k}": float(v) for k, v in figures.items()})
    return batch, out


def update_controllers(controllers: Mapping[str, Controller], record: Mapping[str, float], total_steps: int) -> dict[str, float]:
    """Feed each controller the step's global stats; returns their signals for the metrics record."""
    stats = {"step": record["step"], "total_steps": total_steps, "entropy": record["entropy"], "nll": record["nll"],
             "covariance": record["covariance"], "lr": record.get("lr", float("nan"))}
    out: dict[str, float] = {}
    for name, ctrl in controllers.items():
        ctrl.update(stats)
        out.update({f"control/{name}/{k}": float(v) for k, v in ctrl.signals().items()})
    return out
