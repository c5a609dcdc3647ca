"""Checkpoints without pickle: the state round-trips exactly through safetensors + JSON, a planted
pickle never runs, damage is caught by the manifest, and ``restore_latest`` falls back past it."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from entrostat.rundir import LEGACY_STATE_FILE, WEIGHTS_FILE, checkpoint_name
from entrostat.train import checkpoint as ckpt
from entrostat.train.checkpoint import CHECKPOINT_FILES, MANIFEST_FILE, CheckpointError


class _Payload:
    """Unpickling it creates the file ``marker``: proof that loading ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def _payload(marker: Path) -> bytes:
    return pickle.dumps(_Payload(marker))


def _setup(seed: int = 0):
    """A Linear model, AdamW after one step (so its state holds tensors), LambdaLR, two generators."""
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    gens = {"sample": torch.Generator().manual_seed(seed), "select": torch.Generator().manual_seed(seed + 1)}
    _train_step(model, opt, sched, gens)
    return model, opt, sched, gens


def _train_step(model, opt, sched, gens) -> None:
    x = torch.randn(4, 3, generator=gens["sample"]) + random.random() + float(np.random.rand())
    model(x).pow(2).sum().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    sched.step()


def _state(opt, sched, gens, step: int = 7) -> dict:
    """Every kind of value the trainer stores, plus the generic shapes a later trainer may add."""
    return {
        "step": step,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "counters": {"nonfinite_skipped": 1, "nonfinite_in_row": 0, "reward_errors": 2},
        "controllers": {"thermostat": {"integral": 0.1 + 0.2, "mode": "boost", "history": [1.5, -0.0, 1e-300],
                                       "n": 3, "limit": math.inf}},
        "rng": ckpt.rng_state(gens),
        "extra": {"pairs": [(1, "a"), (2.5, None)], "arrays": {"f": np.arange(4, dtype=np.float32).reshape(2, 2)},
                  "bf16": torch.ones(2, dtype=torch.bfloat16), "flag": True, "$dollar": 1, 5: "int key",
                  (1, 2): [], "empty": {}},
    }


def _assert_same(a, b, where="state") -> None:
    """Equal values of identical types, all the way down (tensor/array dtypes and shapes included)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), where
    elif isinstance(a, float):
        assert math.copysign(1, a) == math.copysign(1, b) and (a == b or (math.isnan(a) and math.isnan(b))), where
    else:
        assert a == b, where


def _save(root: Path, step: int, seed: int = 0) -> tuple[Path, torch.nn.Module]:
    model, opt, sched, gens = _setup(seed)
    return ckpt.save_checkpoint(root, step, model, _state(opt, sched, gens, step)), model


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_weights(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def _rewrite_manifest(path: Path) -> None:
    """Make the manifest match the files as they are now: what a forger who rewrites it would do."""
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    for name in CHECKPOINT_FILES:
        data = (path / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def _one_line_naming(exc: pytest.ExceptionInfo, *names: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and all(n in message for n in names), message


# ---------------------------------------------------------------------------- (a) round trip
def test_round_trip_keeps_values_and_types(tmp_path):
    model, opt, sched, gens = _setup()
    state = _state(opt, sched, gens)
    path = ckpt.save_checkpoint(tmp_path, 7, model, state)
    assert sorted(p.name for p in path.iterdir()) == sorted([*CHECKPOINT_FILES, MANIFEST_FILE])
    fresh = _setup(seed=1)[0]
    loaded = ckpt.load_checkpoint(path, fresh)
    _assert_same(state, loaded)
    _assert_weights(fresh, _weights(model))
    assert isinstance(loaded["rng"]["python"][1], tuple) and isinstance(loaded["rng"]["numpy"][1], np.ndarray)


def test_resumed_continuation_matches_uninterrupted(tmp_path):
    """Load the state into fresh objects (the trainer's load_state_dict calls) and take one more step: same bits."""
    model, opt, sched, gens = _setup()
    path = ckpt.save_checkpoint(tmp_path, 1, model, _state(opt, sched, gens))
    _train_step(model, opt, sched, gens)
    expected = _weights(model), opt.state_dict(), torch.rand(3), gens["select"].get_state()

    model2, opt2, sched2, gens2 = _setup(seed=5)
    state = ckpt.load_checkpoint(path, model2)
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    ckpt.set_rng_state(state["rng"], gens2)
    _train_step(model2, opt2, sched2, gens2)
    _assert_weights(model2, expected[0])
    _assert_same(expected[1], opt2.state_dict())
    assert torch.equal(torch.rand(3), expected[2]) and torch.equal(gens2["select"].get_state(), expected[3])
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_unsupported_value_is_refused_by_name(tmp_path):
    model = _setup()[0]
    with pytest.raises(TypeError, match=r"state\.extra\.when: cannot store a value of type object"):
        ckpt.save_checkpoint(tmp_path, 1, model, {"extra": {"when": object()}})


# ---------------------------------------------------------------------------- (b) planted pickles
def test_payload_is_live(tmp_path):
    """The payload really runs code when unpickled, so the tests below would see it."""
    pickle.loads(_payload(tmp_path / "marker"))
    assert (tmp_path / "marker").exists()


def test_legacy_pickled_state_is_refused_unread(tmp_path):
    path, _ = _save(tmp_path, 1)
    (path / MANIFEST_FILE).unlink()
    (path / LEGACY_STATE_FILE).write_bytes(_payload(tmp_path / "marker"))
    with pytest.raises(CheckpointError) as exc:
        ckpt.load_checkpoint(path, _setup()[0])
    _one_line_naming(exc, str(path), "older entrostat")
    with pytest.raises(CheckpointError) as exc:
        ckpt.restore_latest(tmp_path, _setup()[0])
    _one_line_naming(exc, str(path), "older entrostat")
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize(("name", "forge_manifest"), [*((n, False) for n in (*CHECKPOINT_FILES, MANIFEST_FILE)),
                                                       *((n, True) for n in CHECKPOINT_FILES)])
def test_pickle_in_place_of_a_file_never_runs(tmp_path, name, forge_manifest):
    """Planted alone it fails the manifest check; with a manifest forged to match, it fails to parse."""
    path, _ = _save(tmp_path, 1)
    (path / name).write_bytes(_payload(tmp_path / "marker"))
    if forge_manifest:
        _rewrite_manifest(path)
    model = _setup(seed=3)[0]
    before = _weights(model)
    with pytest.raises(CheckpointError) as exc:
        ckpt.load_checkpoint(path, model)
    _one_line_naming(exc, str(path), name if not forge_manifest else "unreadable")
    _assert_weights(model, before)
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("name", [ckpt.STATE_JSON_FILE, ckpt.STATE_TENSORS_FILE, MANIFEST_FILE])
def test_restore_latest_falls_back_past_a_planted_pickle(tmp_path, name):
    older, older_model = _save(tmp_path, 1, seed=1)
    newer, _ = _save(tmp_path, 2, seed=2)
    (newer / name).write_bytes(_payload(tmp_path / "marker"))
    model = _setup(seed=3)[0]
    with pytest.warns(UserWarning, match=checkpoint_name(2)):
        used, state = ckpt.restore_latest(tmp_path, model)
    assert used == older and state["step"] == 1
    _assert_weights(model, _weights(older_model))
    assert not (tmp_path / "marker").exists()


# ---------------------------------------------------------------------------- (c) damage and fallback
def _truncate(file: Path) -> None:
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _flip_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [*CHECKPOINT_FILES, MANIFEST_FILE])
@pytest.mark.parametrize(("damage", "word"),
                         [(_truncate, "truncated"), (_flip_byte, "altered"), (Path.unlink, "missing")])
def test_damaged_file_is_reported_in_one_line(tmp_path, name, damage, word):
    path, _ = _save(tmp_path, 1)
    damage(path / name)
    with pytest.raises(CheckpointError) as exc:
        ckpt.load_checkpoint(path, _setup()[0])
    _one_line_naming(exc, str(path), name, word if name != MANIFEST_FILE or word == "missing" else "damaged")


def test_truncated_newest_weights_fall_back_with_one_warning(tmp_path):
    older, older_model = _save(tmp_path, 1, seed=1)
    newer, _ = _save(tmp_path, 2, seed=2)
    _truncate(newer / WEIGHTS_FILE)
    model = _setup(seed=3)[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        used, state = ckpt.restore_latest(tmp_path, model)
    assert [str(w.message).count("\n") for w in caught] == [0]
    assert str(newer) in str(caught[0].message) and str(older) in str(caught[0].message)
    assert used == older and state["step"] == 1
    _assert_weights(model, _weights(older_model))


def test_all_damaged_is_one_line_error_and_model_untouched(tmp_path):
    older, _ = _save(tmp_path, 1, seed=1)
    newer, _ = _save(tmp_path, 2, seed=2)
    _truncate(newer / WEIGHTS_FILE)
    _flip_byte(older / ckpt.STATE_JSON_FILE)  # weights intact: they must still not be loaded
    model = _setup(seed=3)[0]
    before = _weights(model)
    with pytest.raises(CheckpointError) as exc:
        ckpt.restore_latest(tmp_path, model)
    _one_line_naming(exc, str(older), str(newer))
    _assert_weights(model, before)


def test_restore_latest_without_checkpoints_cleans_temporaries(tmp_path):
    (tmp_path / ".tmp-step-00000003-1").mkdir()
    assert ckpt.restore_latest(tmp_path, _setup()[0]) is None
    assert not list(tmp_path.iterdir())
    assert ckpt.restore_latest(tmp_path / "absent", _setup()[0]) is None
