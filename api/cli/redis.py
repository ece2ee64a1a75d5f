"""``jobdeck redis``: the Redis server jobdeck uses."""

from __future__ import annotations

import click

from jobs.platform.redis_server import ensure_redis
from jobs.platform.settings import load_settings


@click.group("redis")
def redis_group() -> None:
    """The Redis server jobdeck uses."""


@redis_group.command("ensure")
def redis_ensure_command() -> None:
    """Print the Redis URL to use, starting an embedded server if none answers.

    \b
    Example:
      jobdeck redis ensure
    """
    click.echo(ensure_redis(load_settings()))
