"""The built-in trainer: one process on the CPU (see trainer.py for the step)."""

from entrostat.config.run import RunConfig
from entrostat.train.run import resume, train
from entrostat.train.trainer import Trainer, TrainingError

__all__ = ["RunConfig", "Trainer", "TrainingError", "resume", "train"]
