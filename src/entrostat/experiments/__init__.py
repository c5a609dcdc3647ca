"""Experiments as commands (`entrostat experiment NAME`): each writes a group of runs and a figure."""

from entrostat.experiments.registry import EXPERIMENTS, run_experiment

__all__ = ["EXPERIMENTS", "run_experiment"]
