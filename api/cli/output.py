"""What the commands print: one red line for an error, tables for a person, JSON for a script.

Colour follows rich: on for a terminal, off when the output is piped or ``NO_COLOR`` is set.
Times are shown in the configured zone, absolute and relative; durations humanised.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any, NoReturn

import click
from marshmallow import Schema
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: Exit statuses: the operation failed; bad usage or input; Redis or the database unreachable.
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
#: Width of tables written to a pipe or a file, where rich would otherwise assume 80 columns.
PIPE_WIDTH = 200
#: The colour of each task state (and of a worker's or a check's condition).
STATE_STYLES = {
    "PENDING": "cyan",
    "SCHEDULED": "blue",
    "STARTED": "yellow",
    "RETRY": "magenta",
    "SUCCESS": "green",
    "FAILURE": "bold red",
    "REVOKED": "dim",
    "alive": "green",
    "stopped": "dim",
    "dead": "bold red",
}


def fail(message: str, status: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one red line on standard error and exit with ``status``."""
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(status)


def console() -> Console:
    """A console on the current standard output (click's test runner swaps it per call)."""
    terminal = Console(highlight=False, emoji=False)
    if terminal.is_terminal:
        return terminal
    return Console(highlight=False, emoji=False, width=max(terminal.width, PIPE_WIDTH))


def print_json(value: Any) -> None:
    """Print one JSON document (an object or an array) and nothing else."""
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


def dump_json(schema: Schema, value: Any, *, many: bool = False) -> None:
    """Print ``value`` serialised by the API's ``schema``: the API's field names, nothing else."""
    print_json(schema.dump(value, many=many))


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def table(*columns: str, title: str | None = None, caption: str | None = None) -> Table:
    """A table with these column headings; a heading ending in ``>`` is right-aligned."""
    result = Table(
        title=title, caption=caption, caption_justify="left", header_style="bold", box=box.SIMPLE_HEAD
    )
    for heading in columns:
        if heading.endswith(">"):
            result.add_column(heading[:-1], justify="right", no_wrap=True)
        else:
            result.add_column(heading, overflow="fold")
    return result


def print_table(rows: Table, empty: str | None = None) -> None:
    """Print the table; with no rows, the ``empty`` sentence instead (when given)."""
    if rows.row_count == 0 and empty:
        click.echo(empty)
        return
    console().print(rows)


def plural(count: int, noun: str) -> str:
    """``1 task``, ``3 tasks``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def print_fields(pairs: Iterable[tuple[str, Any]]) -> None:
    """A two-column list of names and values (one record read by a person)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in pairs:
        if value not in (None, "", [], {}):
            grid.add_row(name, value if isinstance(value, Text) else str(value))
    console().print(grid)


def limit_hint(shown: int, limit: int, more: bool, noun: str = "task") -> str | None:
    """The caption under a list cut at ``--limit``: how to see more."""
    if not more:
        return None
    return f"{plural(shown, noun)} shown; more with --limit {min(limit * 2, 500)} (or narrow with filters)"


def relative(moment: datetime, now: datetime | None = None) -> str:
    """``3 min ago`` or ``in 20 s``."""
    now = now or datetime.now(UTC)
    seconds = (moment - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    span = duration(abs(seconds), precise=False)
    return f"in {span}" if seconds > 0 else f"{span} ago"


def moment(value: datetime | None, zone: tzinfo, *, now: datetime | None = None) -> str:
    """An absolute time in ``zone`` with its offset, and how long ago (or until) it is."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M:%S %z} ({relative(value, now)})"


def short_moment(value: datetime | None, zone: tzinfo, *, now: datetime | None = None) -> str:
    """A time for a table cell: month, day and time in ``zone``, and how long ago."""
    if value is None:
        return ""
    return f"{value.astimezone(zone):%m-%d %H:%M:%S} ({relative(value, now)})"


def duration(seconds: float | None, *, precise: bool = True) -> str:
    """Seconds as a person reads them: ``12 ms``, ``1.5 s``, ``3 min 20 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return ""
    if seconds < 0.001 and precise:
        return "< 1 ms"
    if seconds < 1 and precise:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s" if precise and seconds < 10 else f"{seconds:.0f} s"
    units = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
    whole = int(round(seconds))
    parts = []
    for size, name in units:
        if whole >= size:
            parts.append(f"{whole // size} {name}")
            whole %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


def compact(value: Any, width: int = 60) -> str:
    """Arguments or a result on one line, cut to ``width`` characters."""
    if value in (None, [], {}):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def zone_caption(zone: tzinfo, extra: Sequence[str | None] = ()) -> str:
    """A caption naming the zone times are shown in, and any hints."""
    return "  ".join([f"times in {zone}", *(hint for hint in extra if hint)])


def print_json_pretty(value: Any) -> None:
    """A value (a task's result) as indented JSON for a person."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def size(size_bytes: int | None) -> str:
    """Bytes as ``512 B``, ``1.2 kB``, ``3.4 MB``."""
    if size_bytes is None:
        return ""
    if size_bytes < 1000:
        return f"{size_bytes} B"
    value = size_bytes / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    return f"{value:.1f} {unit}"


def print_listing(
    items: Sequence[Any],
    *,
    schema: Schema,
    as_json: bool,
    columns: Sequence[str],
    row: Callable[[Any, tzinfo, datetime], Sequence[Any]],
    zone: tzinfo,
    empty: str,
    noun: str = "row",
    limit: int | None = None,
    more: bool = False,
    note: str | None = None,
) -> None:
    """A list as the API's JSON array, or as a table of ``row(item, zone, now)`` with how to see more."""
    if as_json:
        dump_json(schema, items, many=True)
        return
    now = datetime.now(UTC)
    hint = limit_hint(len(items), limit, more, noun) if limit else None
    rows = table(*columns, caption=zone_caption(zone, [hint or note]))
    for item in items:
        rows.add_row(*row(item, zone, now))
    print_table(rows, empty)
