"""What ``entrostat eval`` evaluates: a run directory, a checkpoint in a run, or the lab base model.

A run directory (``config.yaml`` + ``checkpoints/step-N``) is evaluated at its
latest checkpoint; a checkpoint directory ``RUN/checkpoints/step-N`` at that
checkpoint, with the run's ``config.yaml``; the word ``base`` (or ``lab``) is
the lab base model with the default recipe's config, so a run can be compared
with the model it started from. The config gives the model architecture, the
task, the held-out seed and the default evaluation settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from entrostat.config.run import RunConfig, lab_base_recipe, run_config_from
from entrostat.rundir import CONFIG_FILE, WEIGHTS_FILE, checkpoints_dir, latest_checkpoint, verify_checkpoint

BASE_WORDS = ("base", "lab")


@dataclass(frozen=True)
class EvalTarget:
    """A policy to evaluate: its run config and checkpoint (None: the base model of ``cfg.model``)."""

    label: str  # what the user named, for the report
    cfg: RunConfig
    checkpoint: Path | None

    @property
    def step(self) -> int | None:
        """The training step of the checkpoint (from ``step-00000060``), None for a base model."""
        if self.checkpoint is None:
            return None
        try:
            return int(self.checkpoint.name.split("-", 1)[1])
        except (IndexError, ValueError):
            return None


def _read_config(run_dir: Path) -> RunConfig:
    return run_config_from(yaml.safe_load((run_dir / CONFIG_FILE).read_text()) or {})


def _latest(run_dir: Path) -> Path:
    found = latest_checkpoint(checkpoints_dir(run_dir))
    if found is None:
        raise FileNotFoundError(
            f"run directory {run_dir} has no checkpoints in {run_dir / 'checkpoints'} (was it trained with "
            "log.checkpoint_every=0, or stopped before its first checkpoint?); evaluate `base` for the base model "
            "or train with log.checkpoint_every > 0"
        )
    return found


def resolve_target(spec: str) -> EvalTarget:
    """The EvalTarget named by ``spec``: 'base' / 'lab', a run directory, its checkpoints/ or one checkpoint.

    Raises FileNotFoundError saying what was found instead and what to pass.
    """
    if spec in BASE_WORDS:
        from entrostat.config.recipes import build_config

        return EvalTarget(label=spec, cfg=build_config(None, []), checkpoint=None)
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{spec!r} does not exist; give a run directory written by `entrostat train`, a checkpoint directory "
            f"inside one (RUN/checkpoints/step-N), or `base` for the lab base model"
        )
    if (path / CONFIG_FILE).is_file():
        return EvalTarget(label=spec, cfg=_read_config(path), checkpoint=_latest(path))
    if path.name == "checkpoints" and (path.parent / CONFIG_FILE).is_file():
        return EvalTarget(label=spec, cfg=_read_config(path.parent), checkpoint=_latest(path.parent))
    if (path / WEIGHTS_FILE).is_file():
        run_dir = path.parent.parent
        if path.parent.name != "checkpoints" or not (run_dir / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"checkpoint {path} is not inside a run directory (expected RUN/checkpoints/{path.name} with "
                f"RUN/{CONFIG_FILE}); the run's config gives the model architecture and the task"
            )
        return EvalTarget(label=spec, cfg=_read_config(run_dir), checkpoint=path)
    raise FileNotFoundError(
        f"{path} is neither a run directory (no {CONFIG_FILE}) nor a checkpoint (no {WEIGHTS_FILE}); give a run "
        "directory written by `entrostat train`, RUN/checkpoints/step-N, or `base` for the lab base model"
    )


def load_target_policy(target: EvalTarget, progress: bool = True):
    """(model, tokenizer, format_prompt) of ``target``: the config's base model with the checkpoint's weights
    (a LoRA run's adapters are loaded onto the base, then merged into it for sampling)."""
    from entrostat.models.loading import load_policy
    from entrostat.models.lora import merge_lora

    m = target.cfg.model
    model, tokenizer, format_prompt = load_policy(
        m.name, dtype=m.dtype, seed=target.cfg.trainer.seed, cache_dir=m.cache_dir, progress=progress,
        lab_recipe=lab_base_recipe(target.cfg), lora=m.lora,
    )
    if target.checkpoint is not None:
        _load_weights(model, target.checkpoint)
    return merge_lora(model).eval(), tokenizer, format_prompt


def init_weights(model, spec: str) -> None:
    """Load into ``model`` the weights of the checkpoint ``spec`` names (a run directory: its latest checkpoint, or
    RUN/checkpoints/step-N): what ``model.init_from`` does for a new run."""
    target = resolve_target(spec)
    if target.checkpoint is None:
        raise FileNotFoundError(f"model.init_from = {spec!r} names the base model, where a run starts anyway; give a "
                                "run directory or RUN/checkpoints/step-N")
    _load_weights(model, target.checkpoint)


def _load_weights(model, checkpoint: Path) -> None:
    """The checkpoint's weights, after its files are checked against its manifest (CheckpointError if damaged)."""
    from safetensors.torch import load_file

    from entrostat.models.lora import load_checkpoint_weights

    verify_checkpoint(checkpoint)
    load_checkpoint_weights(model, load_file(str(checkpoint / WEIGHTS_FILE)))
