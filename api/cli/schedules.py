"""``jobdeck schedules``: the scheduler's schedules, and ``pause``, ``resume`` or ``run`` one now.

The same read and act model as ``/api/core/schedules/`` (ScheduleMonitor, ScheduleManager);
every action is written to the audit log, and recorded on the schedule, as the operator.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

import click
from rich.text import Text

from api.cli import output
from api.cli.context import audited, operator, runtime
from api.cli.inputs import json_option
from api.resources.schedules import act_on_schedule
from api.schemas.schedules import ScheduleActionSchema, ScheduleSchema
from monitoring.schedules import (
    CAUGHT_UP,
    DUPLICATE,
    ENQUEUED,
    FAILED,
    MISSED,
    PAUSED,
    RUN_NOW,
    Schedule,
)
from monitoring.schedules.records import PAUSE, RESUME

#: The colour of each tick outcome: sent, sent by hand, skipped while paused, not sent.
OUTCOME_STYLES = {
    ENQUEUED: "green",
    CAUGHT_UP: "green",
    RUN_NOW: "green",
    DUPLICATE: "dim",
    PAUSED: "yellow",
    MISSED: "bold red",
    FAILED: "bold red",
}
SCHEDULE_COLUMNS = (
    "Schedule", "Job", "Cron", "Time zone", "Next run", "Last run", "Last outcome", "Last task", "Paused",
)  # fmt: skip


def schedule_row(schedule: Schedule, zone: tzinfo, now: datetime) -> list:
    outcome = schedule.last_outcome or ""
    paused = Text(f"yes, by {schedule.paused_by}", style="yellow") if schedule.paused else "no"
    return [
        schedule.name,
        schedule.actor,
        schedule.cron,
        schedule.timezone.key,
        output.short_moment(schedule.next_run, zone, now=now),
        output.short_moment(schedule.last_run, zone, now=now),
        Text(outcome, style=OUTCOME_STYLES.get(outcome, "")),
        output.state_text(schedule.last_task_state or ""),
        paused,
    ]


@click.group("schedules", invoke_without_command=True)
@json_option
@click.pass_context
def schedules_group(ctx: click.Context, as_json: bool) -> None:
    """The schedules the scheduler fires: cron, next and last run, last outcome, pause.

    `jobdeck schedules pause|resume|run NAME` acts on one; each action goes to the audit log
    as your user name.

    \b
    Examples:
      jobdeck schedules
      jobdeck schedules --json | jq '.[] | select(.paused) | .name'
      jobdeck schedules pause check_pending_bills
    """
    if ctx.invoked_subcommand is not None:
        return
    jobdeck = runtime()
    schedules = jobdeck.schedule_monitor.list()
    output.print_listing(
        schedules,
        schema=ScheduleSchema(),
        as_json=as_json,
        columns=SCHEDULE_COLUMNS,
        row=schedule_row,
        zone=jobdeck.settings.timezone,
        empty="No schedule is enabled.",
        note=f"{sum(schedule.paused for schedule in schedules)} paused",
    )


def act(action: str, name: str, as_json: bool, *, done: str, unchanged: str = "") -> None:
    """Pause, resume or run ``name`` now as the operator, audited; print the outcome: with --json
    the API's, else ``done`` (or ``unchanged`` when nothing changed), formatted with its fields."""
    outcome = act_on_schedule(
        runtime().schedule_manager, action, name, requested_by=operator(), audited=audited
    )
    if as_json:
        output.dump_json(ScheduleActionSchema(), outcome)
        return
    message = done if outcome.changed or not unchanged else unchanged
    click.secho(message.format(**outcome.as_dict()), fg="green" if outcome.changed else "yellow")


@schedules_group.command("pause")
@click.argument("name")
@json_option
def pause_command(name: str, as_json: bool) -> None:
    """Pause schedule NAME until resumed, in every scheduler process; its ticks are recorded paused.

    \b
    Example:
      jobdeck schedules pause check_pending_bills
    """
    act(PAUSE, name, as_json, done="Paused {schedule}.", unchanged="{schedule} was paused already.")


@schedules_group.command("resume")
@click.argument("name")
@json_option
def resume_command(name: str, as_json: bool) -> None:
    """Resume schedule NAME: its next tick is sent again (those due while paused are not).

    \b
    Example:
      jobdeck schedules resume check_pending_bills
    """
    act(RESUME, name, as_json, done="Resumed {schedule}.", unchanged="{schedule} was not paused.")


@schedules_group.command("run")
@click.argument("name")
@json_option
def run_command(name: str, as_json: bool) -> None:
    """Run schedule NAME now: send its job as if it were due now, paused or not.

    \b
    Example:
      jobdeck schedules run generate_hourly_report
    """
    act(RUN_NOW, name, as_json, done="Sent {schedule} now as task {task_id}.")
