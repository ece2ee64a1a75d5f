"""The ``jobdeck`` group: jobdeck's errors become one red line and an exit status that says why.

0 success; 1 the operation failed (a task failed, nothing to revoke, a file not ready);
2 bad usage or bad input (malformed JSON, unknown job, task, queue or id); 3 Redis or the
database cannot be reached (named by its URL, password masked). Never a traceback.
"""

from __future__ import annotations

from typing import Any

import click
import redis
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from api.cli.context import started_runtime
from api.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_UNAVAILABLE, fail
from jobs.platform.database import redact_url
from jobs.platform.errors import (
    ActionRefused,
    JobdeckError,
    MissingExtra,
    NotReady,
    ServiceUnavailable,
    StorageError,
)

#: jobdeck's errors that mean the operation could not be done, rather than that the input was bad.
OPERATION_FAILED = (ActionRefused, NotReady, StorageError, MissingExtra)


def unreachable_redis(error: Exception) -> str:
    """The one line for a Redis that does not answer, naming its URL without the password."""
    runtime = started_runtime()
    where = f" at {redact_url(runtime.settings.redis_url)}" if runtime else ""
    return f"Redis{where} cannot be reached: {error}"


def unusable_database(error: DBAPIError) -> str:
    """The one line for a database that refused, naming its URL and reason without the password."""
    runtime = started_runtime()
    reason = (str(error.orig).strip().splitlines() or [type(error.orig).__name__])[0]
    if runtime is None:
        return f"the database cannot be used: {reason}"
    url = make_url(runtime.settings.database_url)
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return f"the database at {redact_url(url)} cannot be used: {reason}"


class JobdeckGroup(click.Group):
    """A click group that turns every error into one red line and its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ServiceUnavailable as error:
            cause = error.__context__
            fail(
                unreachable_redis(cause) if isinstance(cause, redis.RedisError) else str(error),
                EXIT_UNAVAILABLE,
            )
        except redis.RedisError as error:
            fail(unreachable_redis(error), EXIT_UNAVAILABLE)
        except DBAPIError as error:
            fail(unusable_database(error), EXIT_UNAVAILABLE)
        except OPERATION_FAILED as error:
            fail(str(error), EXIT_FAILED)
        except JobdeckError as error:
            fail(str(error), EXIT_BAD_INPUT)
        except OSError as error:
            fail(
                f"{error.strerror or error}: {getattr(error, 'filename', '') or ''}".rstrip(": "), EXIT_FAILED
            )
        except Exception as error:
            if ctx.meta.get("jobdeck.debug"):
                raise
            fail(
                f"unexpected {type(error).__name__}: {error} (run with --debug for the traceback)",
                EXIT_FAILED,
            )


@click.group(cls=JobdeckGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """jobdeck: background jobs for the billing back office.

    Reads and acts through the same read model as the REST API, directly against Redis and the
    database (it finds an embedded Redis through var/redis.url), so it works in a one-off
    process such as `heroku run jobdeck tasks`. Every read command takes --json.

    \b
    Examples:
      jobdeck tasks
      jobdeck send test_task --args '["hello"]' --wait
      jobdeck history --status FAILURE --since 2h
      jobdeck status 5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10 --watch
    """
    ctx.meta["jobdeck.debug"] = debug
