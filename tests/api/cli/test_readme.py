"""The README's table from the original's options names commands that exist, with the options shown."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from api.cli import main

README = Path(__file__).resolve().parents[3] / "README.md"
#: The original's celery_manage options (reference summary, section 4).
ORIGINAL_OPTIONS = (
    "--list-tasks",
    "--send-task",
    "--task-status",
    "--revoke-task",
    "--worker-stats",
    "--queue-stats",
    "--task-stats",
    "--history",
    "--test-task",
)


def option_table() -> dict[str, str]:
    rows = re.findall(r"^\| `(--[a-z-]+)[^|]*\| `jobdeck ([^`]+)`", README.read_text(), re.MULTILINE)
    return dict(rows)


def test_every_original_option_maps_to_a_command_that_takes_the_options_shown():
    table = option_table()

    assert tuple(table) == ORIGINAL_OPTIONS
    for original, usage in table.items():
        name, *arguments = usage.split()
        assert name in main.commands, f"{original} maps to jobdeck {name}, which does not exist"
        shown_help = CliRunner().invoke(main, [name, "--help"]).stdout
        for option in (argument for argument in arguments if argument.lstrip("[").startswith("--")):
            option = option.lstrip("[").split("]")[0]
            assert option in shown_help, f"jobdeck {name} has no {option}"
