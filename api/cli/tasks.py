"""``jobdeck tasks``, ``status``, ``result``, ``revoke`` and ``retry``: one task, or the active ones."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, tzinfo

import click
from rich.text import Text

from api.cli import output
from api.cli.context import runtime
from api.cli.inputs import json_option, limit_option
from api.cli.watch import watch_task
from api.schemas.tasks import ResultSchema, TaskSchema
from jobs.platform.errors import BadArguments, UnknownTask
from monitoring.records import FAILURE, REVOKED, TaskRecord

#: The columns of a list of tasks (tasks, history).
TASK_COLUMNS = ("Task id", "Job", "Queue", "State", "When", "Duration>", "Worker", "Result or error")


def task_row(task: TaskRecord, zone: tzinfo, now: datetime) -> list:
    """A task in a list: id, job, queue, state, when it last changed, duration, worker, outcome."""
    state = output.state_text(task.status)
    if task.orphaned:
        state.append(" orphaned", style="bold red")
    if task.status in ("STARTED", "RETRY") and task.progress is not None:
        state.append(f" {task.progress:.0f}%")
    outcome = f"{task.error_type}: {task.error_message}" if task.error_type else output.compact(task.result)
    return [
        task.task_id,
        task.task_name,
        task.queue,
        state,
        output.short_moment(task.timestamp, zone, now=now),
        output.duration(task.duration),
        task.worker or "",
        Text(output.compact(outcome, 80), style="red" if task.error_type else ""),
    ]


def require_task(task_id: str) -> TaskRecord:
    """The task ``task_id``, or UnknownTask (exit 2)."""
    task = runtime().monitor.get_task_status(task_id)
    if task is None:
        raise UnknownTask(f"no task {task_id!r} is known (never sent, or past its retention)")
    return task


def print_task(task: TaskRecord, zone: tzinfo) -> None:
    """One task read by a person: its fields, then its timeline."""
    now = datetime.now(UTC)
    error = Text(f"{task.error_type}: {task.error_message}", style="red") if task.error_type else None
    flags = [name for name in ("orphaned", "dead_lettered", "revoke_requested") if getattr(task, name)]
    output.print_fields(
        [
            ("Task", task.task_id),
            ("Job", f"{task.task_name} on {task.queue}"),
            ("State", output.state_text(task.status)),
            ("Flags", ", ".join(flag.replace("_", " ") for flag in flags)),
            (
                "Progress",
                f"{task.progress:.0f}% {task.progress_text or ''}" if task.progress is not None else None,
            ),
            (
                "Arguments",
                f"{output.compact(task.args, 200)} {output.compact(task.kwargs, 200)}".strip(),
            ),
            ("Result", output.compact(task.result, 200)),
            ("Error", error),
            ("Enqueued", output.moment(task.enqueued_at, zone, now=now)),
            ("Runs at", output.moment(task.eta, zone, now=now)),
            ("Started", output.moment(task.started_at, zone, now=now)),
            ("Finished", output.moment(task.finished_at, zone, now=now)),
            ("Duration", output.duration(task.duration)),
            ("Worker", task.worker),
            ("Attempt", f"{task.attempt} ({task.retries} retries)" if task.attempt else None),
            ("Parent", task.parent_id),
            ("Retry of", task.retry_of),
            ("Retried as", task.retried_as),
            ("Failure group", task.fingerprint),
        ]
    )
    if task.timeline:
        events = output.table("At", "Event", "Worker", "Attempt>", "Detail")
        for event in task.timeline:
            events.add_row(
                output.short_moment(event.get("at"), zone, now=now),
                output.state_text(event["state"]),
                event.get("worker") or "",
                str(event.get("attempt") or ""),
                event.get("error") or event.get("reason") or output.moment(event.get("eta"), zone, now=now),
            )
        output.print_table(events)


@click.command("tasks")
@limit_option(100)
@json_option
def tasks_command(limit: int, as_json: bool) -> None:
    """The active tasks (pending, scheduled, started, retrying), newest first.

    \b
    Example:
      jobdeck tasks --limit 20
    """
    jobdeck = runtime()
    tasks = jobdeck.monitor.get_all_tasks(limit=limit + 1)
    output.print_listing(
        tasks[:limit],
        schema=TaskSchema(),
        as_json=as_json,
        columns=TASK_COLUMNS,
        row=task_row,
        zone=jobdeck.settings.timezone,
        empty="No task is active.",
        noun="task",
        limit=limit,
        more=len(tasks) > limit,
        note=f"{len(tasks)} active",
    )


@click.command("status")
@click.argument("task_id")
@click.option("--watch", is_flag=True, help="Follow the task live with a progress bar until it ends.")
@json_option
def status_command(task_id: str, watch: bool, as_json: bool) -> None:
    """One task: state, times, arguments, result or error, progress and timeline.

    With --watch it follows the task until it ends (exit 1 if it failed or was revoked).

    \b
    Examples:
      jobdeck status 5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10
      jobdeck status 5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10 --watch
    """
    if watch and as_json:
        raise BadArguments(
            "--watch draws a live display; to wait in a script use: jobdeck result ID --wait S --json"
        )
    jobdeck = runtime()
    task = require_task(task_id)
    if watch:
        task = watch_task(jobdeck.monitor, task)
        print_task(task, jobdeck.settings.timezone)
        if task.status in (FAILURE, REVOKED):
            sys.exit(output.EXIT_FAILED)
        return
    if as_json:
        output.dump_json(TaskSchema(), task)
        return
    print_task(task, jobdeck.settings.timezone)


@click.command("result")
@click.argument("task_id")
@click.option("--wait", type=click.FloatRange(0, 3600), default=0, help="Seconds to wait for it to finish.")
@json_option
def result_command(task_id: str, wait: float, as_json: bool) -> None:
    """The task's result, or its error once it failed (exit 1), or its state while it runs.

    \b
    Example:
      jobdeck result 5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10 --wait 30 --json
    """
    outcome = runtime().manager.get_result(task_id, wait=wait)
    if as_json:
        output.dump_json(ResultSchema(), outcome)
    else:
        line = Text(f"{outcome.task_id}  {outcome.task_name}  ")
        line.append_text(output.state_text(outcome.status))
        output.console().print(line)
        if outcome.result is not None:
            output.print_json_pretty(outcome.result)
        if outcome.error:
            click.secho(outcome.error, fg="red")
    if outcome.status == FAILURE:
        sys.exit(output.EXIT_FAILED)
