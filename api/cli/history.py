"""``jobdeck history``, ``failures`` and ``stats``: the read model over many tasks."""

from __future__ import annotations

from datetime import datetime, tzinfo

import click
from rich.text import Text

from api.cli import output
from api.cli.context import runtime
from api.cli.inputs import (
    checked,
    history_filter_options,
    history_query,
    json_option,
    limit_option,
    parse_seconds,
)
from api.cli.tasks import TASK_COLUMNS, task_row
from api.resources.history import history_filters
from api.schemas.tasks import (
    ActorStatsSchema,
    FailureGroupSchema,
    HistoryQuerySchema,
    StatsQuerySchema,
    TaskSchema,
)
from monitoring.records import FailureGroup

#: How the command line names the API's fields in an error message.
OPTION_NAMES = {"q": "--grep"}


def failure_row(group: FailureGroup, zone: tzinfo, now: datetime) -> list:
    return [
        group.fingerprint,
        str(group.count),
        Text(output.compact(f"{group.error_type}: {group.error_message}", 100), style="red"),
        output.short_moment(group.first_seen, zone, now=now),
        output.short_moment(group.last_seen, zone, now=now),
    ]


@click.command("history")
@limit_option()
@history_filter_options
@json_option
def history_command(limit: int, as_json: bool, **filters: str) -> None:
    """Tasks newest first, filtered by job, queue, state, time and text.

    \b
    Examples:
      jobdeck history --status FAILURE --since 2h
      jobdeck history --actor export_data --grep invoices --limit 200
      jobdeck history --since 2026-01-31T08:00 --until 2026-01-31T09:00 --json | jq '.[].task_id'
    """
    jobdeck = runtime()
    zone = jobdeck.settings.timezone
    query = checked(HistoryQuerySchema(), history_query(zone, limit=limit, **filters), OPTION_NAMES)
    page = jobdeck.monitor.get_task_history(**history_filters(query), limit=limit)
    output.print_listing(
        page.tasks,
        schema=TaskSchema(),
        as_json=as_json,
        columns=TASK_COLUMNS,
        row=task_row,
        zone=zone,
        empty="No task matches.",
        noun="task",
        limit=limit,
        more=page.next_cursor is not None,
        note=output.plural(len(page.tasks), "task"),
    )


@click.command("failures")
@limit_option()
@json_option
def failures_command(limit: int, as_json: bool) -> None:
    """Failures grouped by exception type and message: count, first and last seen, a sample error.

    Retry a whole group with: jobdeck retry --fingerprint FINGERPRINT

    \b
    Example:
      jobdeck failures --limit 10
    """
    jobdeck = runtime()
    groups = jobdeck.monitor.get_failure_groups()
    output.print_listing(
        groups[:limit],
        schema=FailureGroupSchema(),
        as_json=as_json,
        columns=("Fingerprint", "Count>", "Error", "First seen", "Last seen"),
        row=failure_row,
        zone=jobdeck.settings.timezone,
        empty="No failure is kept.",
        noun="group",
        limit=limit,
        more=len(groups) > limit,
    )


@click.command("stats")
@click.option("--window", default="1h", show_default=True, help="How far back: 15m, 1h, 7d (60 s to a year).")
@json_option
def stats_command(window: str, as_json: bool) -> None:
    """Per job over the window: counts, failure rate, mean, p50, p95 and slowest duration.

    Read from counters, never from history, so it is cheap over any window.

    \b
    Example:
      jobdeck stats --window 24h
    """
    jobdeck = runtime()
    seconds = checked(StatsQuerySchema(), {"window": parse_seconds(window)})["window"]
    stats = [
        {"actor": actor, **figures} for actor, figures in jobdeck.monitor.get_task_stats(seconds).items()
    ]
    if as_json:
        output.dump_json(ActorStatsSchema(), stats, many=True)
        return
    alarming = jobdeck.settings.alert_failure_rate
    rows = output.table(
        "Job", "Enqueued>", "Succeeded>", "Failed>", "Retried>", "Revoked>", "Failure rate>",
        "Mean>", "p50>", "p95>", "Slowest>",
        title=f"Last {output.duration(seconds)}",
    )  # fmt: skip
    for figures in stats:
        rate = Text(
            f"{figures['failure_rate']:.1%}", style="red" if figures["failure_rate"] > alarming else ""
        )
        rows.add_row(
            figures["actor"],
            *(str(figures[name]) for name in ("enqueued", "succeeded", "failed", "retried", "revoked")),
            rate,
            *(
                output.duration(figures[name])
                for name in ("duration_mean", "duration_p50", "duration_p95", "duration_max")
            ),
        )
    output.print_table(rows, empty="No task ran in the window.")
