"""``jobdeck reports``, ``exports`` and ``backups``: the catalogues of the files jobs write."""

from __future__ import annotations

from datetime import UTC, datetime

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
        if as_json:
            output.dump_json(ReportSchema(), page.reports, many=True)
            return
        zone, now = jobdeck.settings.timezone, datetime.now(UTC)
        hint = output.limit_hint(len(page.reports), limit, page.next_cursor is not None, "report")
        rows = output.table(
            "Id>", "Kind", "Period", "Zone", "Language", "Created", "Files expire",
            caption=output.zone_caption(zone, [hint]),
        )  # fmt: skip
        for report in page.reports:
            rows.add_row(
                str(report.id),
                report.kind,
                f"{report.period_start} to {report.period_end}",
                report.timezone,
                report.language,
                output.short_moment(report.created_at, zone, now=now),
                output.short_moment(report.expires_at, zone, now=now),
            )
    output.print_table(rows, empty="No report matches.")


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
        if as_json:
            output.dump_json(ExportSchema(), page.exports, many=True)
            return
        zone, now = jobdeck.settings.timezone, datetime.now(UTC)
        hint = output.limit_hint(len(page.exports), limit, page.next_cursor is not None, "export")
        rows = output.table(
            "Id>", "Dataset", "Format", "State", "Rows>", "Size>", "Created", "Expires",
            caption=output.zone_caption(zone, [hint]),
        )  # fmt: skip
        for export in page.exports:
            rows.add_row(
                str(export.id),
                export.dataset,
                export.format,
                file_state(export.state),
                "" if export.rows is None else str(export.rows),
                output.size(export.size_bytes),
                output.short_moment(export.created_at, zone, now=now),
                output.short_moment(export.expires_at, zone, now=now),
            )
    output.print_table(rows, empty="No export matches.")


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
    shown = backups[:limit]
    if as_json:
        output.dump_json(BackupSchema(), shown, many=True)
        return
    zone, now = jobdeck.settings.timezone, datetime.now(UTC)
    hint = output.limit_hint(len(shown), limit, len(backups) > limit, "backup")
    rows = output.table(
        "Id>", "Engine", "State", "Verified", "Size>", "Rows>", "Checksum", "Created",
        caption=output.zone_caption(zone, [hint]),
    )  # fmt: skip
    for backup in shown:
        rows.add_row(
            str(backup["id"]),
            backup["engine"],
            file_state(backup["state"]),
            Text("yes", style="green") if backup["verified"] else Text("no", style="yellow"),
            output.size(backup["size_bytes"]),
            str(sum((backup["tables"] or {}).values())),
            (backup["sha256"] or "")[:16],
            output.short_moment(backup["created_at"], zone, now=now),
        )
    output.print_table(rows, empty="No backup has been taken.")
