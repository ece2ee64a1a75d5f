"""Redis or the database out of reach: exit 3, one red line naming the URL without its password.

Run as a user runs the command, in its own process, so that start-up is covered too.
"""

from __future__ import annotations

import pytest

from tests.api.test_cli import assert_one_red_line
from tests.conftest import run_jobdeck

UNREACHABLE_REDIS = "redis://:s3cret@127.0.0.1:1/0"
UNREACHABLE_DATABASE = "postgresql://billing:hunter2@127.0.0.1:1/billing"


@pytest.mark.parametrize(
    "arguments",
    [
        ["tasks"],
        ["history", "--status", "FAILURE", "--json"],
        ["status", "5f0c2a8e-3b71-4a36-9d0e-2f9c4b1e7a10"],
        ["queues"],
        ["ping", "--timeout", "1"],
    ],
    ids=" ".join,
)
def test_unreachable_redis_exits_3(environment, arguments):
    result = run_jobdeck({**environment, "REDIS_URL": UNREACHABLE_REDIS}, *arguments)

    assert_one_red_line(result, "Redis at redis://:***@127.0.0.1:1/0 cannot be reached: ", status=3)
    assert "s3cret" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("arguments", [["backups"], ["reports"], ["tokens", "list"]], ids=" ".join)
def test_unreachable_database_exits_3(environment, arguments):
    result = run_jobdeck({**environment, "DATABASE_URL": UNREACHABLE_DATABASE}, *arguments)

    assert_one_red_line(result, "database at postgresql+psycopg://billing:***@127.0.0.1:1/billing", status=3)
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("arguments", [["reports"], ["tokens", "list"]], ids=" ".join)
def test_a_database_never_migrated_is_named_as_such_not_as_unreachable(environment, tmp_path, arguments):
    result = run_jobdeck({**environment, "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db"}, *arguments)

    assert_one_red_line(result, "has no jobdeck tables yet: run `jobdeck db upgrade`", status=3)
    assert "cannot be reached" not in result.stderr
