"""Checkpoints: written atomically (a temporary directory, then one rename), verified and read back exactly.

A checkpoint ``step-NNNNNNNN/`` holds

- ``model.safetensors``: the model weights (only the adapter tensors of a LoRA model, see ``models/lora.py``);
- ``state.safetensors`` and ``state.json``: the trainer's state (step, optimizer, scheduler, counters,
  controllers, every RNG state: python, numpy, torch CPU, the trainer's generators). Each tensor and numpy
  array goes to ``state.safetensors`` under a flat key; the nested structure around them goes to
  ``state.json`` with ``{"$tensor": key}`` / ``{"$ndarray": key}`` in their place, ``{"$tuple": [...]}`` for
  tuples (``random.setstate`` and ``np.random.set_state`` accept nothing else) and
  ``{"$dict": [[key, value], ...]}`` for dicts whose keys are not all plain strings (the optimizer's are ints);
- ``manifest.json``, written last: the size and sha256 of each file above.

Nothing is ever unpickled, so no file of a checkpoint can run code when it is read; the pickled
``state.pt`` of older versions is refused. Loading checks the manifest before it parses anything and
raises ``CheckpointError`` for a missing, truncated or altered file, so a damaged checkpoint never
reaches the model; ``restore_latest`` then falls back to the previous one. The manifest detects
damage, not forgery (whoever can rewrite a file can rewrite the manifest): safety comes from the
formats. A killed process can leave at most a ``.tmp-*`` directory, which is ignored and cleaned up.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from entrostat.models.lora import checkpoint_weights, load_checkpoint_weights
from entrostat.rundir import (
    CHECKPOINT_FILES,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    STATE_JSON_FILE,
    STATE_TENSORS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    checkpoint_name,
    list_checkpoints,
    one_line,
    sha256_file,
    verify_checkpoint,
)

def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """Every RNG state of the process (python, numpy, torch CPU) and of the trainer's ``generators``."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Restore what ``rng_state`` returned, so the run continues with the same random numbers."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for k, g in generators.items():
        g.set_state(state["generators"][k])


# ---------------------------------------------------------------------------- state <-> (JSON, tensors)
def _encode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """``obj`` as JSON data; its tensors and arrays move to ``tensors`` and leave placeholders behind.

    ``where`` (e.g. ``state.optimizer.param_groups[0]``) only names the place of an unsupported value.
    """
    if isinstance(obj, torch.Tensor):
        return {"$tensor": _stash(tensors, obj)}
    if isinstance(obj, np.ndarray):
        return {"$ndarray": _stash(tensors, torch.from_numpy(obj))}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: _encode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
        return {"$dict": [[_encode(k, tensors, f"{where}.<key>"), _encode(v, tensors, f"{where}.{k}")]
                          for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"checkpoint state {where}: cannot store a value of type {type(obj).__name__}; a checkpoint holds "
                    "tensors, numpy arrays, dicts, lists, tuples, str, int, float, bool and None")


def _stash(tensors: dict[str, torch.Tensor], tensor: torch.Tensor) -> str:
    """Add a CPU copy of ``tensor`` under a fresh flat key (copies: safetensors refuses shared storage)."""
    key = str(len(tensors))
    tensors[key] = tensor.detach().to("cpu", copy=True).contiguous()
    return key


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of ``_encode``; ValueError, KeyError or TypeError for data it never writes."""
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    tag = next(iter(obj)) if len(obj) == 1 else None
    if tag == "$tensor":
        return tensors[obj[tag]]
    if tag == "$ndarray":
        return tensors[obj[tag]].numpy()
    if tag == "$tuple":
        return tuple(_decode(obj[tag], tensors))
    if tag == "$dict":
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj[tag]}
    if any(k.startswith("$") for k in obj):
        raise ValueError(f"unknown placeholder {sorted(obj)[:3]}")
    return {k: _decode(v, tensors) for k, v in obj.items()}


# ---------------------------------------------------------------------------- writing
def save_checkpoint(ckpt_root: Path, step: int, model: torch.nn.Module, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``ckpt_root/step-N`` atomically and prune older ones (keeping ``keep``)."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / checkpoint_name(step)
    tmp = ckpt_root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(checkpoint_weights(model), str(tmp / WEIGHTS_FILE))  # a LoRA model: its adapters only
    tensors: dict[str, torch.Tensor] = {}
    data = _encode(state, tensors, "state")
    save_file(tensors, str(tmp / STATE_TENSORS_FILE))
    _write_text(tmp / STATE_JSON_FILE, json.dumps(data))
    _write_manifest(tmp)  # last: what it lists is on disk (fsynced) before it exists
    _fsync_dir(tmp)
    if final.exists():
        _remove(final)
    os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        _remove(old)
    return final


def _write_manifest(directory: Path) -> None:
    files = {}
    for name in CHECKPOINT_FILES:
        path = directory / name
        files[name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path, sync=True)}
    _write_text(directory / MANIFEST_FILE, json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1))


def _write_text(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _remove(path: Path) -> None:
    """Rename out of sight first (atomic), then delete: a kill mid-delete leaves only a .tmp-* dir."""
    doomed = path.with_name(f".tmp-del-{path.name}-{os.getpid()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


# ---------------------------------------------------------------------------- reading
def load_checkpoint(path: Path, model: torch.nn.Module) -> dict[str, Any]:
    """Verify the checkpoint at ``path``, then load its weights into ``model`` and return the saved state.

    Raises ``CheckpointError`` (one line) for a legacy, incomplete, damaged or unreadable checkpoint,
    before anything reaches ``model``.
    """
    verify_checkpoint(path)
    try:
        weights = load_file(str(path / WEIGHTS_FILE))
        data = json.loads((path / STATE_JSON_FILE).read_bytes())
        state = _decode(data, load_file(str(path / STATE_TENSORS_FILE)))
    except (SafetensorError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {path}: unreadable although its manifest matches "
                              f"({one_line(exc)})") from None
    load_checkpoint_weights(model, weights)
    return state


def restore_latest(ckpt_root: Path, model: torch.nn.Module) -> tuple[Path, dict[str, Any]] | None:
    """Load the newest intact checkpoint under ``ckpt_root`` into ``model``: (its path, its state), or None if none.

    Temporaries of a killed process are removed first. Damaged newer checkpoints are skipped with one
    warning naming them and the checkpoint used; when none is intact, ``CheckpointError`` names them all.
    Only the checkpoint returned loads weights into ``model`` (``load_checkpoint`` verifies first).
    """
    clean_temporaries(ckpt_root)
    damaged: list[str] = []
    for path in reversed(list_checkpoints(ckpt_root)):
        try:
            state = load_checkpoint(path, model)
        except CheckpointError as exc:
            damaged.append(str(exc))
            continue
        if damaged:
            warnings.warn(f"skipping damaged checkpoints: {'; '.join(damaged)}; resuming from {path}", stacklevel=2)
        return path, state
    if damaged:
        raise CheckpointError(f"no intact checkpoint in {ckpt_root}: {'; '.join(damaged)}")
    return None


def clean_temporaries(ckpt_root: Path) -> None:
    """Remove ``.tmp-*`` directories a killed process left behind."""
    if ckpt_root.is_dir():
        for p in ckpt_root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)
