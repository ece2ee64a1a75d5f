"""``jobdeck workers``, ``queues`` (and purging) and ``actors``: the cluster now."""

from __future__ import annotations

from datetime import datetime, tzinfo

import click
from rich.text import Text

from api.cli import output
from api.cli.context import audited, confirm, runtime
from api.cli.inputs import json_option, yes_option
from api.schemas.cluster import ActorSchema, PurgeOutcomeSchema, QueueSchema, WorkerSchema
from jobs.platform.errors import BadArguments
from monitoring.records import WorkerRecord


def worker_state(alive: bool, stopped: bool) -> str:
    return "stopped" if stopped else "alive" if alive else "dead"


WORKER_COLUMNS = (
    "Worker", "Host", "PID>", "Queues", "Threads>", "In flight>", "Done>", "State", "Started",
    "Last heartbeat",
)  # fmt: skip


def worker_row(worker: WorkerRecord, zone: tzinfo, now: datetime) -> list:
    return [
        worker.worker_id,
        worker.host,
        str(worker.pid),
        ", ".join(worker.queues),
        str(worker.threads),
        str(worker.in_flight),
        str(worker.done),
        output.state_text(worker_state(worker.alive, worker.stopped)),
        output.short_moment(worker.started_at, zone, now=now),
        output.short_moment(worker.last_seen, zone, now=now),
    ]


@click.command("workers")
@json_option
def workers_command(as_json: bool) -> None:
    """Every worker process seen recently: host, pid, queues, threads, in flight, alive or dead.

    \b
    Example:
      jobdeck workers
    """
    jobdeck = runtime()
    workers = jobdeck.monitor.get_worker_stats()
    output.print_listing(
        workers,
        schema=WorkerSchema(),
        as_json=as_json,
        columns=WORKER_COLUMNS,
        row=worker_row,
        zone=jobdeck.settings.timezone,
        empty="No worker has been seen recently.",
        note=f"{sum(worker.alive for worker in workers)} alive",
    )


@click.command("queues")
@click.option("--purge", "purge_queue", metavar="NAME", help="Remove every ready message of queue NAME.")
@click.option(
    "--purge-dead", "purge_dead", metavar="NAME", help="Remove every dead-lettered message of NAME."
)
@yes_option
@json_option
def queues_command(purge_queue: str | None, purge_dead: str | None, yes: bool, as_json: bool) -> None:
    """Per queue: ready, delayed, in flight, dead-lettered, latency and live consumers.

    --purge and --purge-dead ask first (add --yes in a script) and go to the audit log.

    \b
    Examples:
      jobdeck queues
      jobdeck queues --purge-dead email --yes
    """
    if purge_queue and purge_dead:
        raise BadArguments("give --purge or --purge-dead, not both")
    if purge_queue or purge_dead:
        purge(purge_queue or purge_dead, dead_letters=bool(purge_dead), yes=yes, as_json=as_json)
        return
    queues = runtime().monitor.get_queue_stats()
    if as_json:
        output.dump_json(QueueSchema(), queues, many=True)
        return
    rows = output.table("Queue", "Ready>", "Delayed>", "In flight>", "Dead>", "Latency>", "Consumers>")
    for queue in queues:
        starved = queue.consumers == 0 and queue.ready + queue.delayed > 0
        rows.add_row(
            queue.name,
            str(queue.ready),
            str(queue.delayed),
            str(queue.in_flight),
            Text(str(queue.dead_lettered), style="red" if queue.dead_lettered else ""),
            output.duration(queue.latency) if queue.ready else "",
            Text(str(queue.consumers), style="bold red" if starved else ""),
        )
    output.print_table(rows)


def purge(queue: str, *, dead_letters: bool, yes: bool, as_json: bool) -> None:
    """Purge a queue's ready or dead-lettered messages after confirmation, audited."""
    manager = runtime().manager
    if queue not in manager.queues:
        raise BadArguments(f"no queue is called {queue!r}; the queues are: {', '.join(manager.queues)}")
    what = "dead-lettered" if dead_letters else "ready"
    confirm(f"Remove every {what} message of queue {queue}?", yes)
    with audited("queue.purge_dead" if dead_letters else "queue.purge", queue) as action:
        purged = manager.purge_dead_letters(queue) if dead_letters else manager.purge_queue(queue)
        action.details["purged"] = purged
    if as_json:
        output.dump_json(PurgeOutcomeSchema(), {"queue": queue, "purged": purged})
        return
    after = "" if dead_letters else "; their tasks are REVOKED"
    click.secho(f"Removed {purged} {what} messages from {queue}{after}.", fg="green")


@click.command("actors")
@json_option
def actors_command(as_json: bool) -> None:
    """The registered jobs: queue, retries, time limits and cron schedule.

    \b
    Example:
      jobdeck actors --json | jq '.[] | select(.schedule != null) | .name'
    """
    jobdeck = runtime()
    actors = jobdeck.describe_actors()
    if as_json:
        output.dump_json(ActorSchema(), actors, many=True)
        return
    rows = output.table(
        "Job", "Queue", "Retries>", "Retry delay>", "Soft limit>", "Time limit>", "Schedule",
        caption=f"schedules in {jobdeck.settings.timezone}",
    )  # fmt: skip
    for actor in actors:
        options = actor.options
        rows.add_row(
            actor.name,
            actor.queue,
            str(options["max_retries"]),
            output.duration(options["retry_delay"]),
            output.duration(options["soft_time_limit"]),
            output.duration(options["time_limit"]),
            actor.schedule or "",
        )
    output.print_table(rows)
