"""``jobdeck demo``: demonstration data."""

from __future__ import annotations

import json

import click

from jobs.billing.seed import seed_demo
from jobs.platform.database import make_engine
from jobs.platform.settings import load_settings


@click.group("demo")
def demo_group() -> None:
    """Demonstration data."""


@demo_group.command("seed")
@click.option("--customers", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--bills", type=click.IntRange(min=0), default=20000, show_default=True)
@click.option("--seed", "random_seed", type=int, default=42, show_default=True)
def demo_seed_command(customers: int, bills: int, random_seed: int) -> None:
    """Write a deterministic demo data set into an empty database (a database with data is kept).

    \b
    Example:
      jobdeck demo seed --customers 20 --bills 200
    """
    engine = make_engine(load_settings().database_url)
    summary = seed_demo(engine, customers=customers, bills=bills, seed=random_seed)
    click.echo(json.dumps(summary, default=str))
