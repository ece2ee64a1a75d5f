"""``python -m scheduler --list``: the schedules as a table, until the CLI puts its own face on it."""

from __future__ import annotations

from typing import TextIO

import click
import redis

from monitoring.schedules import Schedule, ScheduleMonitor

COLUMNS = ("name", "actor", "cron", "time zone", "next run", "last run", "last outcome", "paused")
#: Exit status when Redis cannot be reached.
EXIT_UNAVAILABLE = 1


def print_schedules(monitor: ScheduleMonitor, stream: TextIO) -> int:
    """Print one row per schedule; on an unreachable Redis one red line instead. Returns the exit status."""
    try:
        schedules = monitor.list(recent=0)
    except redis.RedisError as error:
        fail(f"Redis cannot be reached: {error}")
        return EXIT_UNAVAILABLE
    rows = [COLUMNS, *(row(schedule) for schedule in schedules)]
    widths = [max(len(line[index]) for line in rows) for index in range(len(COLUMNS))]
    for line in rows:
        stream.write(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n"
        )
    if not schedules:
        stream.write("(no schedule is enabled)\n")
    return 0


def row(schedule: Schedule) -> tuple[str, ...]:
    """A schedule's cells: times in ISO 8601 with the configured zone's offset, '-' for none."""
    shown = schedule.as_dict()
    paused = f"yes, by {schedule.paused_by} since {shown['paused_at']}" if schedule.paused else "no"
    return (
        schedule.name,
        schedule.actor,
        schedule.cron,
        shown["timezone"],
        shown["next_run"] or "-",
        shown["last_run"] or "-",
        schedule.last_outcome or "-",
        paused,
    )


def fail(message: str) -> None:
    """One red line on standard error (plain when it is not a terminal)."""
    click.echo(click.style(f"jobdeck scheduler: {message}", fg="red"), err=True)
