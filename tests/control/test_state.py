"""Every controller: registry errors, the value keys, and the state_dict round trip."""

from __future__ import annotations

import json
import math

import pytest

from entrostat.config.base import ConfigError
from entrostat.control import ACTUATORS, CONTROLLERS, build_controller

K = 60
CASES = {
    "adaptive_entropy": {"target": 0.5, "delta": 1e-3},
    "aepo": {"target": {"kind": "linear", "start": 0.6, "end": 0.4}},
    "scope_rl": {"signal": "nll"},
    "dcpo": {"target": {"kind": "linear", "start": 0.7, "end": 0.5}, "signal": "nll"},
    "flex_id": {"phase_ratio": 0.4},
    "flex_did": {},
    "flex_od": {},
    "thermostat": {"actuator": "beta2", "target": {"kind": "cosine", "start": 0.6, "end": 0.3}, "predict_gain": 100.0,
                   "kd": 2.0, "slope_window": 5, "approach_horizon": 30},
}


def stats(k):
    """A deterministic, wiggly trajectory of step statistics (k completed steps)."""
    h = 0.5 + 0.3 * math.sin(0.7 * k) + 0.002 * k
    return {"step": k, "total_steps": K, "entropy": h, "nll": 1.1 * h, "covariance": 0.01 * math.cos(k), "lr": 1e-3}


def test_every_registered_controller_is_covered():
    shipped = [n for n in CONTROLLERS.names() if CONTROLLERS.get(n).__module__.startswith("entrostat.")]
    assert sorted(CASES) == shipped  # tests may register their own (tests/train/test_toy_aux_controller.py)


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_round_trip_continues_identically(name):
    original = build_controller(name, **CASES[name])
    for k in range(1, 21):
        original.update(stats(k))
    state = json.loads(json.dumps(original.state_dict(), allow_nan=False))  # plain numbers, strings, lists of floats
    assert all(type(v) in (int, float, str) or (type(v) is list and all(type(x) is float for x in v))
               for v in state.values())
    rebuilt = build_controller(name, **CASES[name])
    rebuilt.load_state_dict(state)
    assert rebuilt.value() == original.value()
    assert rebuilt.signals() == original.signals()
    for k in range(21, K + 1):
        original.update(stats(k)), rebuilt.update(stats(k))
        assert rebuilt.value() == original.value()
        assert rebuilt.signals() == original.signals()
        assert set(original.value()) <= set(ACTUATORS)


def test_load_rejects_foreign_or_incomplete_state():
    aepo = build_controller("aepo")
    with pytest.raises(ValueError, match="belongs to controller 'scope_rl'"):
        aepo.load_state_dict(build_controller("scope_rl").state_dict())
    state = aepo.state_dict()
    del state["h_prev"]
    with pytest.raises(ValueError, match="lacks h_prev"):
        aepo.load_state_dict(state)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ConfigError) as err:
        build_controller("thermostatt", actuator="eps_high", target=0.5)
    msg = str(err.value)
    assert "did you mean 'thermostat'" in msg and "adaptive_entropy, aepo, dcpo, flex_did" in msg


def test_unknown_and_missing_kwargs():
    with pytest.raises(ConfigError) as err:
        build_controller("aepo", t_hi=1.3)
    assert "unknown config key 'control.kwargs.t_hi'" in str(err.value)
    assert "Did you mean 'control.kwargs.t_high'" in str(err.value)
    assert "target, t_high, t_low, signal" in str(err.value)
    with pytest.raises(ConfigError, match="control.kwargs.actuator is required"):
        build_controller("thermostat", target=0.5)


def test_missing_stat_says_what_to_pass():
    c = build_controller("thermostat", actuator="eps_high", target=0.5)
    with pytest.raises(KeyError, match="trainer must pass"):
        c.update({"step": 1, "total_steps": 10, "nll": 0.3})
    with pytest.raises(ValueError, match="completed steps"):
        c.update({**stats(1), "step": 0})
