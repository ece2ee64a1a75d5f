"""The read and act model over every task: TaskMonitor (read) and TaskManager (act)."""

from monitoring.manager import TaskManager, TaskOutcome

__all__ = ["TaskManager", "TaskOutcome"]
