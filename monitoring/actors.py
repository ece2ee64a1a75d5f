"""The registered jobs: each actor's queue, its effective retry and time-limit options, its schedule."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dramatiq


@dataclass(frozen=True)
class ActorRecord:
    """A registered job; options are the actor's own where it sets them, else the configured ones."""

    name: str
    queue: str
    options: dict[str, float]
    schedule: str | None


def describe_actors(
    broker: dramatiq.Broker,
    *,
    max_retries: int,
    retry_delay: float,
    soft_time_limit: float,
    time_limit: float,
    schedules: Mapping[str, str] | None = None,
) -> list[ActorRecord]:
    """Every actor declared on ``broker``, by name; durations in seconds. No Redis round trip.

    ``schedules`` gives each scheduled job's cron as the scheduler fires it (the actor's
    ``periodic`` option with the deployment's overrides, jobs.platform.schedules); without it
    the actors' own options are shown.
    """
    records = []
    for name in sorted(broker.get_declared_actors()):
        actor = broker.get_actor(name)
        options = actor.options
        periodic = options.get("periodic")
        declared = None if periodic is None else str(periodic)
        records.append(
            ActorRecord(
                name=name,
                queue=actor.queue_name,
                options={
                    "max_retries": options.get("max_retries", max_retries),
                    "retry_delay": options.get("retry_delay", retry_delay * 1000) / 1000,
                    "soft_time_limit": options.get("soft_time_limit", soft_time_limit * 1000) / 1000,
                    "time_limit": options.get("time_limit", time_limit * 1000) / 1000,
                },
                # periodiq's cron spec prints as the cron text it was declared with.
                schedule=declared if schedules is None else schedules.get(name),
            )
        )
    return records
