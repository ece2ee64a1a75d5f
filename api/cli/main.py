"""The ``jobdeck`` group: jobdeck's errors become one red line and a non-zero exit."""

from __future__ import annotations

from typing import Any

import click

from api.cli.output import fail
from jobs.platform.errors import JobdeckError


class JobdeckGroup(click.Group):
    """A click group that turns jobdeck's errors into one red line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JobdeckError as error:
            fail(str(error))
        except OSError as error:
            fail(f"{error.strerror or error}: {getattr(error, 'filename', '') or ''}".rstrip(": "))


@click.group(cls=JobdeckGroup)
def main() -> None:
    """jobdeck: background jobs for the billing back office."""
