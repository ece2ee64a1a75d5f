"""``jobdeck send``, ``chain`` and ``ping``: send work, optionally waiting for it through the workers."""

from __future__ import annotations

import sys
import time

import click
from rich.text import Text

from api.cli import output
from api.cli.context import runtime
from api.cli.inputs import checked, json_option, parse_instant, parse_json
from api.cli.tasks import require_task
from api.schemas.tasks import ChainSchema, ChainSentSchema, TaskSchema
from jobs.platform.errors import BadArguments
from monitoring.actions import parse_json_arguments
from monitoring.records import FAILURE, SUCCESS, TaskRecord

#: Seconds ``--wait`` waits when given no number, and ``ping`` by default.
DEFAULT_WAIT = 60.0
DEFAULT_PING_TIMEOUT = 10.0
#: What ``ping`` sends to ``test_task``.
PING_ARGUMENT = "ping"


def print_sent(task: TaskRecord, *, as_json: bool) -> None:
    """A task just sent or finished, as the API's JSON or as one line and its outcome."""
    if as_json:
        output.dump_json(TaskSchema(), task)
        return
    line = Text(f"{task.task_id}  {task.task_name}  ")
    line.append_text(output.state_text(task.status))
    if task.duration is not None:
        line.append(f"  in {output.duration(task.duration)}")
    output.console().print(line)
    if task.status == SUCCESS and task.result is not None:
        output.print_json_pretty(task.result)
    if task.error_type:
        click.secho(f"{task.error_type}: {task.error_message}", fg="red")


@click.command("send")
@click.argument("name")
@click.option("--args", "args_text", help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_text", help="Keyword arguments as a JSON object.")
@click.option("--delay", type=float, help="Seconds to wait before the task may run (at most 7 days).")
@click.option("--eta", help="When the task may run: ISO 8601 (without an offset: in the configured zone).")
@click.option("--queue", help="Another queue than the job's own.")
@click.option(
    "--wait",
    type=click.FloatRange(0, 3600),
    is_flag=False,
    flag_value=DEFAULT_WAIT,
    default=None,
    help=f"Wait up to S seconds (default {DEFAULT_WAIT:g}) for the result; exit 1 unless it succeeded.",
    metavar="[S]",
)
@json_option
def send_command(name, args_text, kwargs_text, delay, eta, queue, wait, as_json) -> None:
    """Send the job NAME (see jobdeck actors), optionally waiting for its result.

    \b
    Examples:
      jobdeck send test_task --args '["hello"]' --wait
      jobdeck send generate_daily_report --kwargs '{"period_start": "2026-01-31"}' --json
      jobdeck send cleanup_cache --eta 2026-02-01T03:00 --queue default
    """
    args, kwargs = parse_json_arguments(args_text, kwargs_text)
    jobdeck = runtime()
    moment = parse_instant(eta, jobdeck.settings.timezone) if eta else None
    message = jobdeck.manager.send_task(name, args, kwargs, delay=delay, eta=moment, queue=queue)
    if wait is not None:
        jobdeck.manager.wait_for_result(message, timeout=wait)
    task = require_task(message.message_id)
    print_sent(task, as_json=as_json)
    if wait is not None and task.status != SUCCESS:
        if task.status != FAILURE:
            click.secho(f"Not finished within {wait:g} s; it is {task.status}.", fg="yellow", err=True)
        sys.exit(output.EXIT_FAILED)


def parse_step(spec: str) -> dict:
    """``NAME``, ``NAME:[args...]``, ``NAME:{kwargs...}`` or a step object as the API takes it."""
    if spec.lstrip().startswith("{"):
        return parse_json(spec, "a chain step")
    name, _, arguments = spec.partition(":")
    step: dict = {"task_name": name.strip()}
    if arguments:
        value = parse_json(arguments, f"the arguments of {name}")
        if not isinstance(value, list | dict):
            raise BadArguments(f"the arguments of {name} are a JSON array (args) or object (kwargs)")
        step["args" if isinstance(value, list) else "kwargs"] = value
    return step


@click.command("chain")
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@json_option
def chain_command(specs: tuple[str, ...], as_json: bool) -> None:
    """Send a pipeline: each step runs after the one before, with its result as the last argument.

    A SPEC is a job name, NAME:[args] (a JSON array), NAME:{kwargs} (a JSON object), or a step
    object {"task_name": ..., "args": [...], "kwargs": {...}} as the API takes it.

    \b
    Example:
      jobdeck chain 'test_task:[1]' test_task 'test_task:{"note": "last"}'
    """
    chain = checked(ChainSchema(), {"steps": [parse_step(spec) for spec in specs]})
    steps = [
        {"name": step["task_name"], "args": step["args"], "kwargs": step["kwargs"]} for step in chain["steps"]
    ]
    messages = runtime().manager.send_chain(steps)
    if as_json:
        output.dump_json(ChainSentSchema(), {"task_ids": [message.message_id for message in messages]})
        return
    rows = output.table("Step>", "Task id", "Job")
    for number, message in enumerate(messages, 1):
        rows.add_row(str(number), message.message_id, message.actor_name)
    output.print_table(rows)


@click.command("ping")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=DEFAULT_PING_TIMEOUT,
    show_default=True,
    help="Seconds.",
)
@json_option
def ping_command(timeout: float, as_json: bool) -> None:
    """Send test_task through the workers, wait for it, and report the round trip.

    Exit 1 if no worker answers in time (the ping is then revoked, so that it never runs late).

    \b
    Example:
      jobdeck ping --timeout 5
    """
    manager = runtime().manager
    started = time.monotonic()
    message = manager.send_task("test_task", [PING_ARGUMENT])
    outcome = manager.wait_for_result(message, timeout=timeout)
    round_trip = time.monotonic() - started
    task = require_task(message.message_id)
    if outcome.status == FAILURE:
        output.fail(f"the ping reached a worker and failed: {outcome.error}", output.EXIT_FAILED)
    if outcome.status != SUCCESS:
        manager.revoke_task(message.message_id)
        live = sum(worker.alive for worker in runtime().monitor.get_worker_stats())
        output.fail(
            f"no answer from the workers within {timeout:g} s ({live} live workers); the ping was revoked",
            output.EXIT_FAILED,
        )
    if as_json:
        output.dump_json(TaskSchema(), task)
        return
    click.secho(
        f"pong from {task.worker} on queue {task.queue}: round trip {output.duration(round_trip)}"
        f" (ran {output.duration(task.duration)})",
        fg="green",
    )
