"""The ``jobdeck`` command line: the same read and act model as the API, from a terminal."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from jobs.errors import JobdeckError

#: Exit status of a command that failed on bad input or an unreachable service.
EXIT_FAILURE = 1


class JobdeckGroup(click.Group):
    """A click group that turns jobdeck's errors into one red line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobdeckError as error:
            fail(str(error))
        except OSError as error:
            fail(f"{error.strerror or error}: {getattr(error, 'filename', '') or ''}".rstrip(": "))


def fail(message: str) -> NoReturn:
    """Print one red line on standard error and exit non-zero."""
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(EXIT_FAILURE)


def start_runtime():
    """The process runtime, started from the environment (settings, broker, actors)."""
    from jobs.runtime import start

    return start()


@click.group(cls=JobdeckGroup)
def main() -> None:
    """jobdeck: background jobs for the billing back office."""


@main.command("send")
@click.argument("name")
@click.option("--args", "args_text", help="Positional arguments as a JSON array.")
@click.option("--kwargs", "kwargs_text", help="Keyword arguments as a JSON object.")
@click.option("--delay", type=float, help="Seconds to wait before the task may run.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds --wait waits.")
@click.option("--json", "as_json", is_flag=True, help="Print the task as JSON.")
def send_command(name, args_text, kwargs_text, delay, wait, timeout, as_json) -> None:
    """Send the job NAME, optionally waiting for its result."""
    from monitoring.manager import PENDING, TaskOutcome, parse_json_arguments

    args, kwargs = parse_json_arguments(args_text, kwargs_text)
    runtime = start_runtime()
    manager = runtime.manager
    message = manager.send_task(name, args, kwargs, delay=delay)
    if wait:
        outcome = manager.wait_for_result(message, timeout=timeout)
    else:
        outcome = TaskOutcome(task_id=message.message_id, task_name=message.actor_name, status=PENDING)
    print_outcome(outcome, as_json=as_json)
    if outcome.status == "FAILURE":
        sys.exit(EXIT_FAILURE)


def print_outcome(outcome, *, as_json: bool) -> None:
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


@main.group("db")
def db_group() -> None:
    """The billing database."""


@db_group.command("upgrade")
def db_upgrade_command() -> None:
    """Apply every database migration (safe to run again)."""
    from jobs.database import redact_url, upgrade
    from jobs.settings import load_settings

    settings = load_settings()
    upgrade(settings.database_url)
    click.echo(f"Database at {redact_url(settings.database_url)} is up to date.")


@db_group.command("backup")
def db_backup_command() -> None:
    """Back the database up now, verify it, and keep the newest JOBDECK_BACKUP_KEEP backups."""
    from jobs.backups import prune_backups, take_backup
    from jobs.database import make_engine
    from jobs.settings import load_settings
    from jobs.storage import backup_storage

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        summary = take_backup(settings, engine)
        summary["pruned"] = prune_backups(engine, backup_storage(settings), settings.backup_keep)
    finally:
        engine.dispose()
    click.echo(json.dumps(summary, default=str))


@db_group.command("restore")
@click.argument("backup_id", type=int)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def db_restore_command(backup_id: int, yes: bool) -> None:
    """Replace the database's content with backup BACKUP_ID (its checksum is checked first)."""
    from jobs.backups import restore_backup
    from jobs.database import redact_url
    from jobs.settings import load_settings

    settings = load_settings()
    if not yes:
        click.confirm(
            f"Replace the content of {redact_url(settings.database_url)} with backup {backup_id}?", abort=True
        )
    summary = restore_backup(settings, backup_id)
    click.echo(
        f"Restored backup {summary['backup_id']} (taken {summary['created_at']}) into {summary['database']}."
    )


@main.group("demo")
def demo_group() -> None:
    """Demonstration data."""


@demo_group.command("seed")
@click.option("--customers", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--bills", type=click.IntRange(min=0), default=20000, show_default=True)
@click.option("--seed", "random_seed", type=int, default=42, show_default=True)
def demo_seed_command(customers: int, bills: int, random_seed: int) -> None:
    """Write a deterministic demo data set into an empty database."""
    from jobs.database import make_engine
    from jobs.seed import seed_demo
    from jobs.settings import load_settings

    engine = make_engine(load_settings().database_url)
    summary = seed_demo(engine, customers=customers, bills=bills, seed=random_seed)
    click.echo(json.dumps(summary, default=str))


@main.group("redis")
def redis_group() -> None:
    """The Redis server jobdeck uses."""


@redis_group.command("ensure")
def redis_ensure_command() -> None:
    """Print the Redis URL to use, starting an embedded server if none answers."""
    from jobs.redis_server import ensure_redis
    from jobs.settings import load_settings

    click.echo(ensure_redis(load_settings()))


if __name__ == "__main__":  # pragma: no cover
    main()
