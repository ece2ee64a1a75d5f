"""The read and act model over every task: TaskMonitor (read) and TaskManager (act)."""
