"""Entropy controllers and target schedules (ALGORITHMS.md §2.2–§2.5, §3).

Controllers are small stateful objects the trainer owns (``base.Controller``);
they are registered by name in ``CONTROLLERS`` and built with
``build_controller(name, **kwargs)``. Importing this package registers them all.

Each controller class types its parameters in a frozen dataclass, its ``Params``
(``ThermostatParams``, ...): fields with ``doc(default, help)``, ``validate(where)``,
and ``actuators``, the names its ``value()`` returns. ``controller_actuators(name,
kwargs)`` answers that from the parameters alone, before any controller is built.
"""

from entrostat.control import adaptive_entropy, aepo, dcpo, flex, scope_rl, thermostat  # noqa: F401  (registrations)
from entrostat.control.actuators import controller_actuators, declares_auxiliary_rollout
from entrostat.control.adaptive_entropy import AdaptiveEntropy, AdaptiveEntropyParams
from entrostat.control.aepo import AEPO, AEPOParams
from entrostat.control.dcpo import DCPO, DCPOParams
from entrostat.control.base import ACTUATORS, CONTROLLERS, Controller, build_controller
from entrostat.control.flex import (
    FlexDID,
    FlexID,
    FlexOD,
    FlexODParams,
    FlexSchedule,
    FlexScheduleParams,
    flex_lambda,
    flex_weights,
)
from entrostat.control.metrics import tracking_metrics
from entrostat.control.scope_rl import ScopeRL
from entrostat.control.targets import TARGETS, Target, build_target
from entrostat.control.thermostat import Thermostat, ThermostatParams

__all__ = [
    "ACTUATORS", "CONTROLLERS", "Controller", "build_controller", "controller_actuators", "declares_auxiliary_rollout",
    "TARGETS", "Target", "build_target", "tracking_metrics", "AdaptiveEntropy", "AdaptiveEntropyParams", "AEPO", "AEPOParams", "DCPO", "DCPOParams",
    "FlexDID", "FlexID", "FlexOD", "FlexODParams", "FlexSchedule", "FlexScheduleParams", "flex_lambda",
    "flex_weights", "ScopeRL", "Thermostat", "ThermostatParams",
]
