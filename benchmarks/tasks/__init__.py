"""Tasks: the registry of task specs, their data splits and batches, and their metrics."""
from benchmarks.tasks.custom import custom_task
from benchmarks.tasks.registry import TASK_NAMES, TaskSpec, get_task

__all__ = ["TASK_NAMES", "TaskSpec", "custom_task", "get_task"]
