"""The pure helpers: humanised durations and times, time parsing, sizes, and --help on every command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import click
import pytest
from click.testing import CliRunner

from api.cli import main
from api.cli.inputs import parse_seconds, parse_time
from api.cli.output import duration, moment, relative, size
from jobs.platform.errors import BadArguments

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 31, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0, "< 1 ms"),
        (0.0123, "12 ms"),
        (1.5, "1.5 s"),
        (42, "42 s"),
        (200, "3 min 20 s"),
        (7500, "2 h 5 min"),
        (3 * 86400 + 4 * 3600 + 59, "3 d 4 h"),
        (None, ""),
    ],
)
def test_durations_read_as_a_person_says_them(seconds, shown):
    assert duration(seconds) == shown


def test_times_are_absolute_in_the_zone_and_relative_to_now():
    assert relative(NOW - timedelta(minutes=3), NOW) == "3 min ago"
    assert relative(NOW + timedelta(seconds=20), NOW) == "in 20 s"
    assert relative(NOW, NOW) == "now"
    assert moment(NOW - timedelta(hours=2), SHANGHAI, now=NOW) == "2026-01-31 06:00:00 +0800 (2 h ago)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3m", NOW - timedelta(minutes=3)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-01-31T08:00", datetime(2026, 1, 31, 0, 0, tzinfo=UTC)),
        ("2026-01-31T08:00+00:00", datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
        ("2026-01-31", datetime(2026, 1, 30, 16, 0, tzinfo=UTC)),
    ],
)
def test_times_are_ages_or_iso_8601_read_in_the_configured_zone(text, expected):
    assert parse_time(text, SHANGHAI, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "3 parsecs", "0m", "5s", ""])
def test_a_time_that_is_neither_is_refused(text):
    with pytest.raises(BadArguments):
        parse_time(text, SHANGHAI, now=NOW)


def test_windows_are_ages_or_seconds():
    assert (parse_seconds("1h"), parse_seconds("15m"), parse_seconds("90")) == (3600, 900, 90)


def test_sizes():
    assert [size(value) for value in (None, 512, 3506, 2_500_000, 7_100_000_000)] == [
        "",
        "512 B",
        "3.5 kB",
        "2.5 MB",
        "7.1 GB",
    ]


def every_command(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))
        else:
            yield (*path, name)


@pytest.mark.parametrize("path", list(every_command(main)), ids=" ".join)
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"])

    assert result.exit_code == 0
    assert "Example" in result.stdout, f"jobdeck {' '.join(path)} --help shows no example"
    assert f"jobdeck {' '.join(path)}" in result.stdout
