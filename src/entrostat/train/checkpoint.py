"""Checkpoints: written atomically (a temporary directory, then one rename), read back exactly.

A checkpoint holds the model weights (safetensors; only the adapter tensors of a
LoRA model, see ``models/lora.py``), optimizer and scheduler
state, controller state, every RNG state (python, numpy, torch CPU, the
trainer's generators) and the trainer state (step, data position, counters).
A killed process can leave at most a ``.tmp-*`` directory, which is ignored and
cleaned up; ``latest_checkpoint`` only ever sees complete checkpoints.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from entrostat.models.lora import checkpoint_weights, load_checkpoint_weights
from entrostat.rundir import WEIGHTS_FILE, checkpoint_name, list_checkpoints


def rng_state(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }


def set_rng_state(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    for k, g in generators.items():
        g.set_state(state["generators"][k])


def save_checkpoint(ckpt_root: Path, step: int, model: torch.nn.Module, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``ckpt_root/step-N`` atomically and prune older ones (keeping ``keep``)."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / checkpoint_name(step)
    tmp = ckpt_root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(checkpoint_weights(model), str(tmp / WEIGHTS_FILE))  # a LoRA model: its adapters only
    torch.save(state, tmp / "state.pt")
    _fsync_dir(tmp)
    if final.exists():
        _remove(final)
    os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    for old in list_checkpoints(ckpt_root)[:-keep] if keep > 0 else []:
        _remove(old)
    return final


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


def load_checkpoint(path: Path, model: torch.nn.Module) -> dict[str, Any]:
    """Load weights into ``model`` and return the saved state dict."""
    load_checkpoint_weights(model, load_file(str(path / WEIGHTS_FILE)))
    return torch.load(path / "state.pt", weights_only=False)


def clean_temporaries(ckpt_root: Path) -> None:
    """Remove ``.tmp-*`` directories a killed process left behind."""
    if ckpt_root.is_dir():
        for p in ckpt_root.iterdir():
            if p.name.startswith(".tmp-"):
                shutil.rmtree(p, ignore_errors=True)
