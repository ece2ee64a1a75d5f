"""``jobdeck reports``, ``exports`` and ``backups``: the catalogues of the files jobs write."""

from __future__ import annotations

import click
from rich.text import Text

from api.cli import output
from api.cli.context import runtime
from api.cli.inputs import checked, json_option, limit_option
from api.schemas.files import BackupSchema, ExportQuerySchema, ExportSchema, ReportQuerySchema, ReportSchema
from jobs.billing.backups.catalogue import read_catalogue
from jobs.billing.exports.catalogue import list_exports
from jobs.billing.models import FILE_STATES
from jobs.billing.reports.catalogue import list_reports
from jobs.billing.reports.generating import REPORT_PERIODS
from jobs.platform.database import unavailable_on_driver_error

#: The colour of a file's state.
FILE_STATE_STYLES = {"ready": "green", "running": "yellow", "failed": "bold red", "expired": "dim"}


def file_state(state: str) -> Text:
    return Text(state, style=FILE_STATE_STYLES.get(state, ""))


def report_row(report, zone, now) -> list:
    return [
        str(report.id),
        report.kind,
        f"{report.period_start} to {report.period_end}",
        report.timezone,
        report.language,
        output.short_moment(report.created_at, zone, now=now),
        output.short_moment(report.expires_at, zone, now=now),
    ]


def export_row(export, zone, now) -> list:
    return [
        str(export.id),
        export.dataset,
        export.format,
        file_state(export.state),
        "" if export.rows is None else str(export.rows),
        output.size(export.size_bytes),
        output.short_moment(export.created_at, zone, now=now),
        output.short_moment(export.expires_at, zone, now=now),
    ]


def backup_row(backup, zone, now) -> list:
    return [
        str(backup["id"]),
        backup["engine"],
        file_state(backup["state"]),
        Text("yes", style="green") if backup["verified"] else Text("no", style="yellow"),
        output.size(backup["size_bytes"]),
        str(sum((backup["tables"] or {}).values())),
        (backup["sha256"] or "")[:16],
        output.short_moment(backup["created_at"], zone, now=now),
    ]


@click.command("reports")
@click.option("--kind", type=click.Choice(tuple(REPORT_PERIODS)), help="Only reports of this kind.")
@click.option("--grep", help="Words the report's content must all hold (customer names, currencies, ...).")
@limit_option()
@json_option
def reports_command(kind: str | None, grep: str | None, limit: int, as_json: bool) -> None:
    """Generated reports, newest first; --grep finds those whose content holds every word.

    \b
    Examples:
      jobdeck reports --kind daily --limit 7
      jobdeck reports --grep "Acme CNY"
    """
    jobdeck = runtime()
    query = checked(ReportQuerySchema(), {"kind": kind, "q": grep, "limit": limit}, {"q": "--grep"})
    with jobdeck.sessions() as session, unavailable_on_driver_error(jobdeck.engine.url):
        page = list_reports(session, search=query.get("q"), kind=kind, limit=limit)
        output.print_listing(
            page.reports,
            schema=ReportSchema(),
            as_json=as_json,
            columns=("Id>", "Kind", "Period", "Zone", "Language", "Created", "Files expire"),
            row=report_row,
            zone=jobdeck.settings.timezone,
            empty="No report matches.",
            noun="report",
            limit=limit,
            more=page.next_cursor is not None,
        )


@click.command("exports")
@click.option("--state", type=click.Choice(FILE_STATES), help="Only exports in this state.")
@limit_option()
@json_option
def exports_command(state: str | None, limit: int, as_json: bool) -> None:
    """Export runs newest first: dataset, format, state, rows, size and expiry.

    \b
    Example:
      jobdeck exports --state ready
    """
    jobdeck = runtime()
    checked(ExportQuerySchema(), {"state": state, "limit": limit})
    with jobdeck.sessions() as session, unavailable_on_driver_error(jobdeck.engine.url):
        page = list_exports(session, state=state, limit=limit)
        output.print_listing(
            page.exports,
            schema=ExportSchema(),
            as_json=as_json,
            columns=("Id>", "Dataset", "Format", "State", "Rows>", "Size>", "Created", "Expires"),
            row=export_row,
            zone=jobdeck.settings.timezone,
            empty="No export matches.",
            noun="export",
            limit=limit,
            more=page.next_cursor is not None,
        )


@click.command("backups")
@limit_option()
@json_option
def backups_command(limit: int, as_json: bool) -> None:
    """Database backups newest first: state, verified, checksum, size and rows.

    Restore one with: jobdeck db restore ID

    \b
    Example:
      jobdeck backups --json | jq '.[0].sha256'
    """
    jobdeck = runtime()
    with unavailable_on_driver_error(jobdeck.engine.url):
        backups = list(reversed(read_catalogue(jobdeck.engine)))
    output.print_listing(
        backups[:limit],
        schema=BackupSchema(),
        as_json=as_json,
        columns=("Id>", "Engine", "State", "Verified", "Size>", "Rows>", "Checksum", "Created"),
        row=backup_row,
        zone=jobdeck.settings.timezone,
        empty="No backup has been taken.",
        noun="backup",
        limit=limit,
        more=len(backups) > limit,
    )
