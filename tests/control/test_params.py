"""Typed controller parameters (control/*.py ``Params``): did-you-mean, type errors, every validate rule,
construction from a params object, and the actuators each controller names before it is built."""

from __future__ import annotations

import dataclasses
import math

import pytest

from entrostat.config.base import ConfigError, describe
from entrostat.control import (
    CONTROLLERS,
    AdaptiveEntropyParams,
    Controller,
    FlexODParams,
    FlexScheduleParams,
    Thermostat,
    ThermostatParams,
    build_controller,
    controller_actuators,
)
from tests.control.test_state import CASES, stats

TYPED = ("adaptive_entropy", "flex_did", "flex_id", "flex_od", "thermostat")
PARAMS = (AdaptiveEntropyParams, FlexScheduleParams, FlexODParams, ThermostatParams)
T = {"actuator": "eps_high", "target": 0.5}  # the thermostat's required arguments


@pytest.mark.parametrize(("name", "key", "meant"), [
    ("thermostat", "k_p", "kp"), ("thermostat", "slope_windw", "slope_window"),
    ("adaptive_entropy", "cmax", "c_max"), ("flex_id", "phase", "phase_ratio"),
    ("flex_did", "phase_ration", "phase_ratio"), ("flex_od", "floor", "floor_frac"),
])
def test_unknown_parameter_suggests_the_closest(name, key, meant):
    kwargs = {**(T if name == "thermostat" else {}), key: 1}
    with pytest.raises(ConfigError) as err:
        build_controller(name, **kwargs)
    msg = str(err.value)
    assert f"unknown config key 'control.kwargs.{key}'. Did you mean 'control.kwargs.{meant}'?" in msg
    assert f"Valid keys here: {', '.join(f.name for f in dataclasses.fields(CONTROLLERS.get(name).Params))}" in msg


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("thermostat", {**T, "kp": "fast"}, "control.kwargs.kp: 'fast' is not a valid float or NoneType"),
    ("thermostat", {**T, "slope_window": 2.5}, "control.kwargs.slope_window: expected an integer, got 2.5"),
    ("thermostat", {**T, "lead": True}, "control.kwargs.lead: expected an integer, got True"),
    ("thermostat", {**T, "anti_windup": "yes"}, "control.kwargs.anti_windup: expected true or false, got 'yes'"),
    ("thermostat", {**T, "actuator": 3}, "control.kwargs.actuator: 3 is not a valid str or NoneType"),
    ("adaptive_entropy", {"delta": [1e-4]}, "control.kwargs.delta: expected a number, got [0.0001]"),
    ("flex_od", {"floor_frac": "low"}, "control.kwargs.floor_frac: expected a number, got 'low'"),
])
def test_mistyped_parameter_names_its_key(name, kwargs, message):
    with pytest.raises(ConfigError) as err:
        build_controller(name, **kwargs)
    assert message in str(err.value)


def test_types_are_coerced_as_in_yaml():
    c = build_controller("thermostat", **T, kp="0.5", lead=3.0, u_min=0)  # YAML 1.1 reads 1e-6 as a string
    assert (c.kp, c.lead, c.u_min) == (0.5, 3, 0.0) and type(c.lead) is int and type(c.u_min) is float


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target": 0.5}, "control.kwargs.actuator is required: the knob to drive, one of "),
    ({**T, "actuator": "temperature"}, "control.kwargs.actuator: unknown actuator 'temperature'; did you mean "
                                       "'aux_temperature'?"),
    ({"actuator": "eps_high"}, "control.kwargs.target is required: an entropy H* (a number) or a schedule"),
    ({**T, "target": {"kind": "linear", "start": 0.5}}, "control.kwargs.target: target kind 'linear' needs argument"),
    ({**T, "target": -0.1}, "control.kwargs.target: target 'constant': value must lie in [0.0, inf]"),
    ({**T, "kp": math.nan}, "control.kwargs.kp = nan must be a finite number"),
    ({**T, "u_max": math.inf}, "control.kwargs.u_max = inf must be a finite number"),
    ({**T, "u_min": 0.3, "u_max": 0.3}, "control.kwargs.u_min = 0.3 must be below u_max = 0.3 (eps_high defaults "
                                        "to [0.1, 0.4])"),
    ({**T, "u0": 0.9}, "control.kwargs.u0 = 0.9 must lie in [u_min, u_max] = [0.1, 0.4]"),
    ({**T, "kp": -0.1}, "control.kwargs.kp = -0.1 must be ≥ 0"),
    ({**T, "ki": -0.1}, "control.kwargs.ki = -0.1 must be ≥ 0"),
    ({**T, "integral_limit": -1.0}, "control.kwargs.integral_limit = -1.0 must be ≥ 0"),
    ({**T, "predict_gain": -1.0}, "control.kwargs.predict_gain = -1.0 must be ≥ 0"),
    ({**T, "kd": -1.0}, "control.kwargs.kd = -1.0 must be ≥ 0"),
    ({**T, "direction": 0}, "control.kwargs.direction = 0 must be +1 (raising eps_high raises entropy) or -1"),
    ({**T, "integral_step": 0.0}, "control.kwargs.integral_step = 0.0 must be > 0; leave it out (null)"),
    ({**T, "integral_step": -1.0}, "control.kwargs.integral_step = -1.0 must be > 0"),
    ({**T, "lead": -1}, "control.kwargs.lead = -1 must be a whole number of steps ≥ 0"),
    ({**T, "slope_window": 1}, "control.kwargs.slope_window = 1 must be a whole number of steps ≥ 2"),
    ({**T, "approach_horizon": 0}, "control.kwargs.approach_horizon = 0 must be a whole number of steps ≥ 1, or null"),
])
def test_thermostat_rules(kwargs, message):
    with pytest.raises(ConfigError) as err:
        build_controller("thermostat", **kwargs)
    assert message in str(err.value)


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("adaptive_entropy", {"target": "high"}, "control.kwargs.target: an entropy target is a number or a mapping"),
    ("adaptive_entropy", {"delta": -1e-4}, "control.kwargs.delta = -0.0001 must be a finite number ≥ 0"),
    ("adaptive_entropy", {"c_max": math.nan}, "control.kwargs.c_max = nan must be a finite number ≥ 0"),
    ("adaptive_entropy", {"c0": 1.0}, "control.kwargs.c0 = 1.0 must lie in [0, c_max] = [0, 0.005]"),
    ("adaptive_entropy", {"c0": -1e-3}, "control.kwargs.c0 = -0.001 must lie in [0, c_max]"),
    ("flex_id", {"phase_ratio": 0.0}, "control.kwargs.phase_ratio = 0.0 must lie strictly between 0 and 1"),
    ("flex_did", {"phase_ratio": 1.0}, "control.kwargs.phase_ratio = 1.0 must lie strictly between 0 and 1"),
    ("flex_id", {"phase_ratio": math.nan}, "control.kwargs.phase_ratio = nan must lie strictly between 0 and 1"),
    ("flex_od", {"floor_frac": -0.1}, "control.kwargs.floor_frac = -0.1 must lie in [0, 1]"),
    ("flex_od", {"floor_frac": 1.5}, "control.kwargs.floor_frac = 1.5 must lie in [0, 1]"),
])
def test_other_rules(name, kwargs, message):
    with pytest.raises(ConfigError) as err:
        build_controller(name, **kwargs)
    assert message in str(err.value)


def test_built_from_a_params_object_like_from_keywords():
    kwargs = CASES["thermostat"]
    typed, keyword = Thermostat(ThermostatParams(**kwargs)), build_controller("thermostat", **kwargs)
    for k in range(1, 30):
        typed.update(stats(k)), keyword.update(stats(k))
        assert typed.value() == keyword.value() and typed.signals() == keyword.signals()
    assert typed.params == keyword.params == ThermostatParams(**kwargs)
    with pytest.raises(ConfigError, match=r"ThermostatParams\.u0 = 0\.9 must lie in"):
        Thermostat(ThermostatParams(**T, u0=0.9))  # validated, named after the class
    with pytest.raises(TypeError, match="not both"):
        Thermostat(ThermostatParams(**T), kp=1.0)
    with pytest.raises(TypeError, match="expected a ThermostatParams"):
        Thermostat(FlexODParams())


@pytest.mark.parametrize("name", sorted(CASES))
def test_actuators_are_the_keys_of_value(name):
    expected = tuple(build_controller(name, **CASES[name]).value())
    assert controller_actuators(name, CASES[name]) == expected
    if name in TYPED:
        assert build_controller(name, **CASES[name]).actuators == expected


def test_actuators_follow_the_parameters():
    assert controller_actuators("thermostat", {"actuator": "beta1", "target": 0.5}) == ("beta1",)
    with pytest.raises(ConfigError, match="did you mean 'kl_cov_ratio'"):
        controller_actuators("thermostat", {"actuator": "kl_cov", "target": 0.5})
    with pytest.raises(ConfigError, match="Did you mean 'control.kwargs.c_max'"):
        controller_actuators("adaptive_entropy", {"cmax": 1e-3})
    with pytest.raises(ConfigError, match="unknown controller 'flexid'"):
        controller_actuators("flexid", {})


def test_a_controller_must_name_its_actuators(monkeypatch):
    monkeypatch.setitem(CONTROLLERS._items, "mute", type("Mute", (Controller,), {"name": "mute"}))
    with pytest.raises(TypeError, match="controller 'mute' names no actuators"):
        controller_actuators("mute", {})


@pytest.mark.parametrize("params", PARAMS)
def test_every_field_has_help_and_the_class_is_registered(params):
    assert all(help_text for _, _, help_text in describe(params))
    assert any(CONTROLLERS.get(name).Params is params for name in TYPED)
    assert dataclasses.is_dataclass(params) and params.__dataclass_params__.frozen


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("aepo", {"t_low": 1.5}, "control.kwargs.t_low = 1.5 must be ≤ t_high = 1.2"),
    ("aepo", {"t_high": 0}, "control.kwargs.t_high = 0.0 must be a temperature > 0"),
    ("aepo", {"n_reg": 0}, "control.kwargs.n_reg = 0 must be a whole number of rows ≥ 1"),
    ("aepo", {"n_reg_frac": 2.0}, "control.kwargs.n_reg_frac = 2.0 must be a fraction in (0, 1]"),
    ("aepo", {"prompt_fraction": 0.0}, "control.kwargs.prompt_fraction = 0.0 must be a fraction in (0, 1]"),
    ("aepo", {"signal": "logprob"}, "control.kwargs.signal = 'logprob' must be one of entropy, nll"),
    ("scope_rl", {"alpha": 0.0}, "control.kwargs.alpha = 0.0 must be a fraction in (0, 1]"),
    ("scope_rl", {"t_max": 0.9}, "control.kwargs.t_max = 0.9 must be a finite number ≥ 1"),
    ("scope_rl", {"positive_filter": "correct"}, "control.kwargs.positive_filter = 'correct' must be one of reward"),
])
def test_auxiliary_rollout_controllers_validate(name, kwargs, message):
    with pytest.raises(ConfigError) as err:
        build_controller(name, **kwargs)
    assert message in str(err.value)


def test_auxiliary_requests_carry_the_parameters():
    aepo = build_controller("aepo", prompt_fraction=0.5, n_reg_frac=0.1, positive_threshold=0.2)
    req = aepo.aux_request()
    assert (req.compose, req.temperature, req.prompt_fraction, req.max_rows_frac, req.threshold, req.keep_frac) == (
        "substitute", 1.2, 0.5, 0.1, 0.2, 1.0)
    scope = build_controller("scope_rl", alpha=0.25, positive_filter="group_advantage")
    req = scope.aux_request()
    assert (req.compose, req.temperature, req.prompt_fraction, req.weight, req.positives) == (
        "additive", 1.0, 0.25, 0.25, "group_advantage")
