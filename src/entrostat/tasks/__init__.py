"""Prompt sources with verifiable rewards, registered by name (``get_task("lab")``).

Registered: ``lab`` (the procedural lab task), ``reasoning_gym`` (reasoning-gym
datasets and their verifiers), ``dataset`` (jsonl / parquet / Hugging Face rows
checked by math-verify). The reasoning-gym and math-verify packages are imported
only when those tasks are used. Each task types its keyword arguments in a params
dataclass (``LabParams``, ``dataset.DatasetParams``, ``reasoning_gym.ReasoningGymParams``),
checked by ``task_params(name, kwargs)`` without building the task.
"""

from entrostat.tasks import dataset as _dataset  # noqa: F401 - registers "dataset"
from entrostat.tasks import reasoning_gym as _reasoning_gym  # noqa: F401 - registers "reasoning_gym"
from entrostat.tasks.base import TASKS, Problem, Task, get_task, register_task, task_params
from entrostat.tasks.lab import LabAnswer, LabParams, LabTask

__all__ = ["TASKS", "LabAnswer", "LabParams", "LabTask", "Problem", "Task", "get_task", "register_task", "task_params"]
