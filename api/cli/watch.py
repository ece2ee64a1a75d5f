"""``jobdeck status ID --watch``: follow one task live until it ends.

On a terminal a progress bar moves with what the job reports (``report_progress``); written to a
pipe, one line is printed each time the state or the progress changes.
"""

from __future__ import annotations

import time

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.cli import output
from jobs.platform.errors import UnknownTask
from monitoring.queries import TaskMonitor
from monitoring.records import FINISHED_STATES, SUCCESS, TaskRecord

#: Seconds between two reads of the task (each one round trip, two while it runs).
POLL_INTERVAL = 0.25


def watch_task(monitor: TaskMonitor, task: TaskRecord, *, interval: float = POLL_INTERVAL) -> TaskRecord:
    """Follow ``task`` until it is finished; return it as it ended."""
    console = output.console()
    if not console.is_terminal:
        return _watch_as_lines(monitor, task, interval)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(_describe(task), total=100, completed=task.progress or 0, note="")
        while task.status not in FINISHED_STATES:
            time.sleep(interval)
            task = _reread(monitor, task)
            progress.update(
                bar,
                description=_describe(task),
                completed=100 if task.status == SUCCESS else task.progress or 0,
                note=task.progress_text or "",
            )
    return task


def _watch_as_lines(monitor: TaskMonitor, task: TaskRecord, interval: float) -> TaskRecord:
    seen = None
    while True:
        shown = (task.status, task.progress, task.progress_text)
        if shown != seen:
            percent = "" if task.progress is None else f" {task.progress:.0f}%"
            click.echo(f"{task.task_id} {task.status}{percent} {task.progress_text or ''}".rstrip())
            seen = shown
        if task.status in FINISHED_STATES:
            return task
        time.sleep(interval)
        task = _reread(monitor, task)


def _reread(monitor: TaskMonitor, task: TaskRecord) -> TaskRecord:
    again = monitor.get_task_status(task.task_id)
    if again is None:
        raise UnknownTask(f"task {task.task_id!r} is no longer known (past its retention)")
    return again


def _describe(task: TaskRecord) -> str:
    style = output.STATE_STYLES.get(task.status, "")
    return f"{task.task_name} [{style}]{task.status}[/]" if style else f"{task.task_name} {task.status}"
