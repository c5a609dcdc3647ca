"""What a run checks before it trains, so that a bad input is refused with one line before the first step.

- ``check_config``: a ``RunConfig`` built or edited in Python is validated as one read from YAML is.
- ``check_init_from``: ``model.init_from`` names an intact checkpoint (its manifest verified) before the
  base model is loaded, which for the lab can mean pre-training it first.
- ``NewRunDir``: creates a new run's directory, checks that it and its ``checkpoints/`` can be written (an
  unwritable ``checkpoints/`` used to surface only at the first checkpoint, after the steps before it had
  run), and, when the run fails before its first step is logged, removes what it created: a refused run
  leaves no directory behind (or only what was there before) for ``entrostat compare runs/*`` to trip on.
- ``check_loaded``: checks that need the loaded model — a controller's entropy target above ln V, the
  entropy of the uniform policy over the model's V tokens, which no policy reaches (the integral winds up).
- ``ResumePlan``: ``--resume`` against the run's checkpoint — the run's ``config.yaml`` must still be the
  config its latest checkpoint was written with (``Trainer.state_dict()["config"]``, compared without the
  ``log`` section), read from the checkpoint's ``state.json`` before any model loads and again from the
  checkpoint actually restored; ``--extend-to N`` is the one sanctioned change (see ``train.run.resume``).
- ``diverged``: after a step failed, whether the weights have blown up, to name that cause and its fix.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from entrostat.config.base import ConfigError, to_dict
from entrostat.config.run import RunConfig, run_config_from, target_range
from entrostat.rundir import (
    CONFIG_FILE,
    STATE_JSON_FILE,
    CheckpointError,
    read_manifest,
    checkpoints_dir,
    list_checkpoints,
    metrics_path,
    read_metrics,
    sha256_file,
)

IGNORED_SECTIONS = ("log",)  # where a run writes and how it shows progress: free to change between resumes


class RunDirError(OSError):
    """A run directory cannot be created or written; the message is one line naming it and what to do."""


def check_config(cfg: RunConfig) -> None:
    """Validate ``cfg`` as ``from_dict`` does for YAML (a config built or edited in Python skips that)."""
    run_config_from(to_dict(cfg))


def read_run_config(run_dir: Path) -> RunConfig:
    """The run's ``config.yaml`` as a validated RunConfig; errors name the file."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {CONFIG_FILE}: it is not an entrostat run directory")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a YAML mapping of config sections")
    try:
        return run_config_from(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def check_init_from(cfg: RunConfig) -> None:
    """``model.init_from`` names an intact checkpoint (CheckpointError / FileNotFoundError otherwise)."""
    if not cfg.model.init_from:
        return
    from entrostat.eval.target import resolve_target
    from entrostat.rundir import verify_checkpoint

    target = resolve_target(cfg.model.init_from)
    if target.checkpoint is None:
        raise FileNotFoundError(f"model.init_from = {cfg.model.init_from!r} names the base model, where a run starts "
                                "anyway; give a run directory or RUN/checkpoints/step-N")
    verify_checkpoint(target.checkpoint)


# ---------------------------------------------------------------------------- the run directory
def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and write (then remove) a file in it; RunDirError if that fails."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".tmp-write-test-{os.getpid()}"  # .tmp-*: cleaned up with a killed checkpoint's
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunDirError(f"cannot write in {directory} ({reason}): choose another run directory (--run-dir or "
                          "log.run_dir) or make it writable") from None


def check_run_dir_writable(run_dir: Path, cfg: RunConfig) -> None:
    """The run directory, and its checkpoints/ when the run writes checkpoints, can be written."""
    check_writable(run_dir)
    if cfg.log.checkpoint_every:
        check_writable(checkpoints_dir(run_dir))


def logged_a_step(run_dir: Path) -> bool:
    """Whether the run's metrics hold a training step (step ≥ 1; step 0 is the evaluation before training)."""
    path = metrics_path(run_dir)
    try:
        return path.is_file() and any(isinstance(r, dict) and r.get("step", 0) >= 1 for r in read_metrics(path))
    except OSError:
        return False


class NewRunDir:
    """Creates a new run's directory (writable, with its checkpoints/); if the block fails before a step is
    logged, removes what it created — the directories it made, or, in a directory that was there before,
    the entries that were not — so a refused run leaves nothing behind."""

    def __init__(self, run_dir: Path, cfg: RunConfig):
        self.run_dir, self.cfg = Path(run_dir), cfg
        self._top_created: Path | None = None
        self._before: set[str] = set()

    def __enter__(self) -> Path:
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunDirError(f"cannot write in {self.run_dir}: it is a file, not a directory; choose another run "
                              "directory (--run-dir or log.run_dir)")
        missing = [p for p in (self.run_dir, *self.run_dir.parents) if not p.exists()]
        self._top_created = missing[-1] if missing else None
        self._before = set() if missing else {p.name for p in self.run_dir.iterdir()}
        try:
            check_run_dir_writable(self.run_dir, self.cfg)
        except BaseException:
            self._remove()
            raise
        return self.run_dir

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and not logged_a_step(self.run_dir):
            self._remove()

    def _remove(self) -> None:
        if self._top_created is not None:
            shutil.rmtree(self._top_created, ignore_errors=True)
            return
        if self.run_dir.is_dir():
            for p in self.run_dir.iterdir():
                if p.name in self._before:
                    continue
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- after the model loads
def vocab_size(model, tokenizer) -> int | None:
    size = getattr(getattr(model, "config", None), "vocab_size", None)
    return int(size) if isinstance(size, int) and size > 1 else (len(tokenizer) if tokenizer is not None else None)


def check_loaded(cfg: RunConfig, model, tokenizer) -> None:
    """Refuse an entropy target above ln V (V: the model's vocabulary): the entropy of the uniform policy is the
    most any policy has, so the controller would chase the target for ever and its integral wind up."""
    got, v = target_range(cfg), vocab_size(model, tokenizer)
    if got is None or v is None:
        return
    _, high, _, k = got
    if high > math.log(v):
        raise ConfigError(f"control.kwargs.target: H* = {high:g} at step {k} exceeds ln V = {math.log(v):.3f}, the "
                          f"entropy of the uniform policy over this model's V = {v} tokens, which no policy exceeds; "
                          f"the controller would never reach it (its integral winds up): choose a target below "
                          f"{math.log(v):.3f}")


def diverged(model, tokenizer) -> str | None:
    """Why the model is broken, or None: non-finite weights, or finite ones so large that the logits are not
    finite (e.g. optim.lr = 1e12). Only asked after a step failed."""
    import torch

    try:
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        bad = [n for n, p in params if not bool(torch.isfinite(p).all())]
        if bad:
            return f"{len(bad)} weight tensor(s) are not finite (first: {bad[0]})"
        first = next(model.parameters())
        token = next((t for t in (getattr(tokenizer, "bos_token_id", None), getattr(tokenizer, "eos_token_id", None))
                      if t is not None), 0)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([[token]], device=first.device)).logits
        if not bool(torch.isfinite(logits).all()):
            largest = max(float(p.detach().abs().max()) for _, p in params)
            return f"the model's logits are not finite (its largest weight is {largest:.3g})"
    except Exception:  # noqa: BLE001 - a diagnosis that fails diagnoses nothing
        return None
    return None


# ---------------------------------------------------------------------------- resume against the checkpoint
def stored_config(checkpoint: Path) -> dict[str, Any] | None:
    """The config a checkpoint was written with (None for one written before configs were stored), from its
    ``state.json`` checked against the manifest — without reading the weights. CheckpointError if damaged."""
    size, digest = read_manifest(checkpoint)[STATE_JSON_FILE]
    path = checkpoint / STATE_JSON_FILE
    if not path.is_file() or path.stat().st_size != size or sha256_file(path) != digest:
        raise CheckpointError(f"checkpoint {checkpoint}: {STATE_JSON_FILE} is missing, truncated or altered")
    try:
        from entrostat.train.checkpoint import _decode

        config = json.loads(path.read_bytes()).get("config")
        return None if config is None else _decode(config, {})
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {checkpoint}: {STATE_JSON_FILE} is unreadable ({exc})") from None


def comparable(data: dict[str, Any]) -> dict[str, Any]:
    """A config dict with every default filled in (as this version of entrostat reads it), without the
    ``IGNORED_SECTIONS``."""
    try:
        data = to_dict(run_config_from(data))
    except ConfigError:
        data = dict(data)
    return {k: v for k, v in data.items() if k not in IGNORED_SECTIONS}


def first_difference(a: Any, b: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """(dotted key, a's value, b's value) of the first place where two nested dicts differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in a or key not in b:
                return path, a.get(key, "<absent>"), b.get(key, "<absent>")
            found = first_difference(a[key], b[key], path)
            if found is not None:
                return found
        return None
    return None if a == b else (prefix, a, b)


@dataclass
class ResumePlan:
    """How ``resume`` continues a run: the config to train with, checked against the run's checkpoint.

    ``extend_to`` N: the run's ``config.yaml`` may equal the checkpoint's config, or equal it with
    trainer.steps = N (a process that died after rewriting config.yaml and before its next checkpoint);
    N must exceed the checkpoint's trainer.steps. ``write`` then rewrites config.yaml with N.
    """

    run_dir: Path
    cfg: RunConfig
    extend_to: int | None = None

    @classmethod
    def make(cls, run_dir: Path, cfg: RunConfig, extend_to: int | None) -> "ResumePlan":
        """Check ``cfg`` (the run's config.yaml) against the newest checkpoint whose state.json is intact, before
        any model loads; with ``extend_to``, ``cfg`` trains to that many steps."""
        plan = cls(Path(run_dir), cfg, extend_to)
        if extend_to is not None and (isinstance(extend_to, bool) or not isinstance(extend_to, int) or extend_to < 1):
            raise ConfigError(f"--extend-to {extend_to!r}: give the new total number of steps, an integer ≥ 1")
        for path in reversed(list_checkpoints(checkpoints_dir(run_dir))):
            try:
                saved = stored_config(path)
            except CheckpointError:
                continue  # damaged: restore_latest falls back past it, and the config is checked again there
            plan.check(path, saved)
            break
        else:
            if extend_to is not None and extend_to < cfg.trainer.steps:
                raise ConfigError(f"--extend-to {extend_to}: the run already has trainer.steps = {cfg.trainer.steps}; "
                                  "--extend-to only lengthens a run")
        if extend_to is not None:
            cfg.trainer.steps = extend_to
            check_config(cfg)  # a target schedule, say, is checked over the new length
        return plan

    def check(self, checkpoint: Path, saved: dict[str, Any] | None) -> None:
        """Refuse the run's config when it is not the one ``checkpoint`` was written with (one line)."""
        if saved is None:  # written before checkpoints stored their config: nothing to compare with
            return
        ours, theirs = comparable(to_dict(self.cfg)), comparable(saved)
        steps = theirs.get("trainer", {}).get("steps")
        if self.extend_to is not None:
            if isinstance(steps, int) and self.extend_to <= steps:
                raise ConfigError(f"--extend-to {self.extend_to}: the run has trainer.steps = {steps} (checkpoint "
                                  f"{checkpoint.name}); --extend-to only lengthens a run: give N > {steps}")
            if ours.get("trainer", {}).get("steps") == self.extend_to:  # config.yaml already rewritten
                ours = {**ours, "trainer": {**ours["trainer"], "steps": steps}}
        diff = first_difference(ours, theirs)
        if diff is None:
            return
        key, now, then = diff
        longer = ("; to train longer, resume with --extend-to N (entrostat train --resume RUN --extend-to N)"
                  if key == "trainer.steps" else "")
        raise ConfigError(
            f"{self.run_dir / CONFIG_FILE} no longer matches the run's checkpoint {checkpoint.name}: {key} is "
            f"{now!r} in {CONFIG_FILE} but {then!r} in the checkpoint; a resumed run continues the config it was "
            f"trained with, so put {key} back to {then!r}, or start a new run (model.init_from={self.run_dir} "
            f"starts it from these weights){longer}"
        )

    def write(self) -> None:
        """With ``extend_to``: config.yaml rewritten with the new trainer.steps (atomically)."""
        if self.extend_to is None:
            return
        path = self.run_dir / CONFIG_FILE
        data = yaml.safe_load(path.read_text())
        data.setdefault("trainer", {})["steps"] = self.extend_to
        tmp = path.with_name(f".tmp-{CONFIG_FILE}-{os.getpid()}")
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
        tmp.replace(path)
