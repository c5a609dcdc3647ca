"""Prompt sources with verifiable rewards, registered by name (``get_task("lab")``)."""

from entrostat.tasks.base import TASKS, Problem, Task, get_task, register_task
from entrostat.tasks.lab import LabAnswer, LabTask

__all__ = ["TASKS", "LabAnswer", "LabTask", "Problem", "Task", "get_task", "register_task"]
