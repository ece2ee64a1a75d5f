"""``jobdeck send``: send a job, optionally waiting for its result."""

from __future__ import annotations

import sys

import click

from api.cli.output import EXIT_FAILURE, print_outcome
from jobs.runtime import start
from monitoring.actions import TaskOutcome, parse_json_arguments
from monitoring.records import FAILURE, PENDING


@click.command("send")
@click.argument("name")
@click.option("--args", "args_text", help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_text", help="Keyword arguments as a JSON object.")
@click.option("--delay", type=float, help="Seconds to wait before the task may run.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds --wait waits.")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
def send_command(name, args_text, kwargs_text, delay, wait, timeout, as_json) -> None:
    """Send the job NAME, optionally waiting for its result."""
    args, kwargs = parse_json_arguments(args_text, kwargs_text)
    manager = start().manager
    message = manager.send_task(name, args, kwargs, delay=delay)
    if wait:
        outcome = manager.wait_for_result(message, timeout=timeout)
    else:
        outcome = TaskOutcome(task_id=message.message_id, task_name=message.actor_name, status=PENDING)
    print_outcome(outcome, as_json=as_json)
    if outcome.status == FAILURE:
        sys.exit(EXIT_FAILURE)
