"""What the commands read: times (``3m``, ``2h``, ``7d`` or ISO 8601), JSON, and the API's own checks.

Options are checked by the API's marshmallow schemas, so the command line accepts what the API
accepts and names the problem the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

import click
from marshmallow import Schema, ValidationError

from jobs.platform.errors import BadArguments
from monitoring.access import parse_duration


def parse_time(text: str, zone: tzinfo, *, now: datetime | None = None) -> datetime:
    """``3m``, ``2h``, ``7d``, ``2w`` ago, or an ISO 8601 time (without an offset: in ``zone``)."""
    text = text.strip()
    if text and text[-1] in "mhdw" and text[:-1].strip().isdigit():
        return (now or datetime.now(UTC)) - parse_duration(text)
    return parse_instant(text, zone, ages=True)


def parse_instant(text: str, zone: tzinfo, *, ages: bool = False) -> datetime:
    """An ISO 8601 time; without an offset it is read in ``zone``."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        also = " or an age such as 30m, 2h, 7d" if ages else ""
        raise BadArguments(
            f"a time is ISO 8601 (2026-01-31T08:00, with or without an offset){also}; got {text!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def parse_seconds(text: str) -> int:
    """A window such as ``15m``, ``1h`` or ``7d`` (or plain seconds) in seconds."""
    if text.strip().isdigit():
        return int(text)
    return int(parse_duration(text).total_seconds())


def parse_json(text: str, what: str) -> Any:
    """JSON text, or BadArguments naming ``what`` and where it breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadArguments(f"{what} is not valid JSON: {error.msg} at position {error.pos}") from None


def checked(schema: Schema, data: dict[str, Any], options: dict[str, str] | None = None) -> dict[str, Any]:
    """``data`` loaded by the API's ``schema``; BadArguments naming the first bad option.

    ``options`` names the option of each field whose option is not ``--`` and the field's name.
    """
    try:
        return schema.load({name: value for name, value in data.items() if value is not None})
    except ValidationError as error:
        raise BadArguments(_first_problem(error.messages, options or {})) from None


def _first_problem(messages: Any, options: dict[str, str]) -> str:
    path: list[str] = []
    problem = messages
    while isinstance(problem, dict | list) and problem:
        if isinstance(problem, list):
            problem = problem[0]
            continue
        name, problem = next(iter(problem.items()))
        if name != "_schema":
            path.append(options.get(name, f"--{name}") if not path else str(name))
    where = " ".join(path) or "input"
    return f"{where}: {problem}"


def json_option(function: Callable) -> Callable:
    """``--json``: print the API's JSON instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON with the API's field names.")(
        function
    )


def limit_option(default: int = 50) -> Callable[[Callable], Callable]:
    """``--limit N``: how many rows at most (the API's page limit, 1 to 500)."""
    return click.option(
        "--limit",
        type=click.IntRange(1, 500),
        default=default,
        show_default=True,
        help="Most rows to show (1-500).",
    )


def yes_option(function: Callable) -> Callable:
    """``--yes``: do not ask for confirmation (needed when standard input is not a terminal)."""
    return click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(function)


#: The history filters: option, help, and the API's query field it feeds.
HISTORY_FILTER_OPTIONS = (
    ("--actor", "Only this job."),
    ("--queue", "Only this queue."),
    ("--status", "Only this state (PENDING, SCHEDULED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)."),
    ("--since", "Only tasks after this: an age (30m, 2h, 7d) or an ISO 8601 time."),
    ("--until", "Only tasks before this: an age or an ISO 8601 time."),
    ("--grep", "Only tasks whose arguments, result or error hold this text."),
)


def history_filter_options(function: Callable) -> Callable:
    """The history filters as options (``--actor``, ``--queue``, ``--status``, ``--since``, ...)."""
    for option, help_text in reversed(HISTORY_FILTER_OPTIONS):
        function = click.option(option, help=help_text)(function)
    return function


def history_query(zone: tzinfo, **options: Any) -> dict[str, Any]:
    """The API's history query (``HistoryQuerySchema`` fields) from the filter options."""
    query = {
        "actor": options.get("actor"),
        "queue": options.get("queue"),
        "status": options["status"].upper() if options.get("status") else None,
        "q": options.get("grep"),
        "limit": options.get("limit"),
    }
    for name in ("since", "until"):
        if options.get(name):
            query[name] = parse_time(options[name], zone).isoformat()
    return query
