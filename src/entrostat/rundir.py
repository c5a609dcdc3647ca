"""The run directory: the one place that names its files, and the one reader / writer of its metrics.

A run directory holds ``config.yaml`` (the resolved config), ``metrics.jsonl`` (one JSON
record per step, appended by ``MetricsLogger``) and ``checkpoints/step-NNNNNNNN/``, each
with the weights in ``model.safetensors`` and the rest of the trainer's state beside them.
train, eval, report, diagnostics and experiments all locate files through this module, and
``verify_checkpoint`` checks a checkpoint's files against its manifest before anyone reads them.
It imports nothing above the standard library.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "step-"
WEIGHTS_FILE = "model.safetensors"
LOCK_FILE = ".lock"
STATE_TENSORS_FILE = "state.safetensors"
STATE_JSON_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
CHECKPOINT_FILES = (WEIGHTS_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE)  # what every manifest lists
LEGACY_STATE_FILE = "state.pt"  # the pickle of entrostat before this format; never read
MANIFEST_FORMAT = "entrostat-checkpoint/1"
TIMING_PREFIXES = ("time/", "throughput/")  # wall-clock figures: the only keys that differ between identical runs


def config_path(run_dir: Path) -> Path:
    return Path(run_dir) / CONFIG_FILE


def metrics_path(run_dir: Path) -> Path:
    return Path(run_dir) / METRICS_FILE


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{step:08d}"


def list_checkpoints(ckpt_root: Path) -> list[Path]:
    """Complete checkpoints under ``ckpt_root``, oldest first (temporary ``.tmp-*`` directories are ignored)."""
    if not ckpt_root.is_dir():
        return []
    return sorted(p for p in ckpt_root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX))


def latest_checkpoint(ckpt_root: Path) -> Path | None:
    found = list_checkpoints(ckpt_root)
    return found[-1] if found else None


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    return v


class MetricsLogger:
    """The one writer of metrics: appends records; on resume, drops records past the checkpoint's step first."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", -1) <= step]
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            for r in keep:
                f.write(json.dumps(r) + "\n")
        tmp.replace(self.path)

    def log(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _clean(v) for k, v in record.items()}) + "\n")
            f.flush()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; a truncated or corrupt line is skipped (with a warning)."""
    out = []
    with open(path) as f:
        for i, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                warnings.warn(f"{path}:{i}: skipping a truncated or corrupt metrics line", stacklevel=2)
    return out


class RunDirLocked(RuntimeError):
    """Another process holds the run directory."""


class RunLock:
    """An exclusive lock on a run directory (``.lock``, flock'd), held while a process trains in it.

    Two ``entrostat train --resume RUN`` started together would both append to one metrics file; the
    second now stops at once, naming the first one's pid. The lock dies with its process (kill -9 too).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirLocked(f"{self.path.parent} is in use by another entrostat process (pid {holder}); "
                               "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


# ---------------------------------------------------------------------------- checkpoint integrity
class CheckpointError(RuntimeError):
    """A checkpoint is missing, damaged, altered or in an older format; the message is one line naming it."""


def verify_checkpoint(path: Path) -> None:
    """Check every file of the checkpoint against its manifest (size, then sha256)."""
    for name, (size, digest) in read_manifest(path).items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"checkpoint {path}: {name} is missing")
        actual = file.stat().st_size
        if actual != size:
            raise CheckpointError(f"checkpoint {path}: {name} is truncated or altered "
                                  f"({actual} bytes, the manifest says {size})")
        if sha256_file(file) != digest:
            raise CheckpointError(f"checkpoint {path}: {name} is altered (its sha256 differs from the manifest's)")


def read_manifest(path: Path) -> dict[str, tuple[int, str]]:
    """{file name: (bytes, sha256)} of every file in ``CHECKPOINT_FILES``, from the checkpoint's manifest."""
    manifest = path / MANIFEST_FILE
    if not manifest.is_file():
        if (path / LEGACY_STATE_FILE).exists():
            raise CheckpointError(f"checkpoint {path} was written by an older entrostat (a pickled {LEGACY_STATE_FILE}); "
                                  "the checkpoint format changed and pickles are never loaded since they can run "
                                  "code: resume it with the entrostat that wrote it, or start a new run")
        raise CheckpointError(f"checkpoint {path}: {MANIFEST_FILE} is missing (an incomplete or damaged checkpoint)")
    try:
        data = json.loads(manifest.read_bytes())
        if data["format"] != MANIFEST_FORMAT:
            raise ValueError(f"format {data['format']!r}, expected {MANIFEST_FORMAT!r}")
        files = data["files"]
        return {name: (int(files[name]["bytes"]), str(files[name]["sha256"])) for name in CHECKPOINT_FILES}
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: {MANIFEST_FILE} is damaged ({one_line(exc)})") from None


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def sha256_file(path: Path, sync: bool = False) -> str:
    """Hex sha256 of the file; ``sync``: also flush it to disk (the rename must not outrun the data)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        if sync:
            os.fsync(f.fileno())
    return digest.hexdigest()
