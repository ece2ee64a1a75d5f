"""What the commands print: one red line for an error, outcomes as text or JSON."""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from monitoring.actions import TaskOutcome

#: Exit status of a command that failed on bad input or an unreachable service.
EXIT_FAILURE = 1


def fail(message: str) -> NoReturn:
    """Print one red line on standard error and exit non-zero."""
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(EXIT_FAILURE)


def print_outcome(outcome: TaskOutcome, *, as_json: bool) -> None:
    """Print a task outcome as JSON or as a short, coloured summary."""
    if as_json:
        click.echo(json.dumps(outcome.as_dict(), default=str))
        return
    colour = {"SUCCESS": "green", "FAILURE": "red"}.get(outcome.status, "yellow")
    click.echo(f"{outcome.task_id}  {outcome.task_name}  " + click.style(outcome.status, fg=colour))
    if outcome.result is not None:
        click.echo(json.dumps(outcome.result, indent=2, default=str))
    if outcome.error:
        click.secho(outcome.error, fg="red")
