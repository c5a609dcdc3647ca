"""Metrics sinks beside ``metrics.jsonl``: TensorBoard and Weights & Biases.

``build_sinks(cfg.log, run_dir, config_dict)`` returns the sinks a run's ``log`` section asks for
(none by default). Each gets exactly the records ``MetricsLogger`` appends to ``metrics.jsonl``
(``Sinks.tee`` writes both), at the record's ``step``:

- ``log.tensorboard: true``: one scalar per numeric key, ``global_step=record["step"]``, written by
  ``torch.utils.tensorboard.SummaryWriter`` into ``RUN/tensorboard/`` (``pip install 'entrostat[tensorboard]'``).
- ``log.wandb: true`` (project ``entrostat``) or ``log.wandb: PROJECT``: ``wandb.init(project, dir=RUN,
  config=<the resolved config>, mode=$WANDB_MODE)`` and ``wandb.log(record, step=record["step"])``
  (``pip install 'entrostat[wandb]'``).

Neither package is imported unless its sink is on; ``LogConfig.validate`` refuses a sink whose package
is missing when the config is built, before any training.

Resume appends from the resumed step, as ``metrics.jsonl`` does after dropping the records past the
checkpoint: the TensorBoard writer opens with ``purge_step`` = the first step it logs, so TensorBoard
discards the earlier process's events from that step on; the W&B run id is kept in ``RUN/wandb-run-id``
and the resumed process continues that run (``resume="allow"``). W&B keeps no rewind: steps it already
holds past the checkpoint stay, and it ignores records of those steps again (its steps only increase).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Protocol

from entrostat.config.run import LogConfig

TENSORBOARD_DIR = "tensorboard"
WANDB_ID_FILE = "wandb-run-id"
DEFAULT_WANDB_PROJECT = "entrostat"


class Sink(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's numeric values (bools as 0 / 1), without ``step``; strings, lists and None are left out."""
    return {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float))}


class TensorBoardSink:
    """One scalar per numeric key of each record, at ``global_step=record["step"]``, in ``RUN/tensorboard/``."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self._writer = None

    def log(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: a resumed run's first step; TensorBoard drops the earlier events from there on.
            self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=step)
        for key, value in scalars(record).items():
            self._writer.add_scalar(key, value, global_step=step)
        self._writer.flush()  # one record a step: users watch the run live

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class WandbSink:
    """``wandb.log(record, step=record["step"])`` into one W&B run per run directory (kept across resumes)."""

    def __init__(self, project: str, run_dir: Path, config_dict: dict[str, Any]):
        import wandb

        self._wandb = wandb
        id_file = Path(run_dir) / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        if not run_id:
            run_id = _new_run_id(wandb)
            id_file.write_text(run_id + "\n")
        self._run = wandb.init(project=project, dir=str(run_dir), config=config_dict, id=run_id, resume="allow",
                               mode=os.environ.get("WANDB_MODE"))

    def log(self, record: dict[str, Any]) -> None:
        self._run.log({k: v for k, v in record.items() if k != "step"}, step=int(record["step"]))

    def close(self) -> None:
        if self._run is not None:
            self._run.finish()
            self._run = None


def _new_run_id(wandb) -> str:
    util = getattr(wandb, "util", None)
    if util is not None and hasattr(util, "generate_id"):
        return util.generate_id()
    import secrets

    return secrets.token_hex(4)


class Sinks(list):
    """The run's sinks (a list); ``log`` feeds each, ``close`` closes each; a context manager that closes them."""

    def log(self, record: dict[str, Any]) -> None:
        for sink in self:
            sink.log(record)

    def close(self) -> None:
        errors = []
        for sink in self:
            try:
                sink.close()
            except Exception as exc:  # close every sink even if one fails
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Sinks":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def tee(self, logger) -> "_Tee":
        """``logger`` (a ``MetricsLogger``) whose ``log`` also feeds these sinks, with the same record."""
        return _Tee(logger, self)


class _Tee:
    def __init__(self, logger, sinks: Iterable[Sink]):
        self._logger, self._sinks = logger, sinks

    def log(self, record: dict[str, Any]) -> None:
        self._logger.log(record)
        for sink in self._sinks:
            sink.log(record)

    def __getattr__(self, name: str):  # truncate_after and the rest: the logger's own
        return getattr(self._logger, name)


def build_sinks(log_cfg: LogConfig, run_dir: Path, config_dict: dict[str, Any]) -> Sinks:
    """The sinks ``log_cfg`` asks for (TensorBoard, then W&B); empty when both are off (the default)."""
    sinks = Sinks()
    if log_cfg.tensorboard:
        sinks.append(TensorBoardSink(Path(run_dir) / TENSORBOARD_DIR))
    if log_cfg.wandb:
        project = DEFAULT_WANDB_PROJECT if log_cfg.wandb is True else str(log_cfg.wandb)
        sinks.append(WandbSink(project, Path(run_dir), config_dict))
    return sinks


__all__ = ["Sink", "Sinks", "TensorBoardSink", "WandbSink", "build_sinks", "scalars"]
