"""``jobdeck tokens`` run as a user runs it: create (printed once), list, revoke; each audited."""

from __future__ import annotations

import json

import pytest

from api import create_app
from jobs.runtime import start
from tests.api.test_cli import assert_one_red_line
from tests.conftest import run_jobdeck


@pytest.fixture
def migrated(environment):
    assert run_jobdeck(environment, "db", "upgrade").returncode == 0
    return environment


def test_create_list_revoke_and_the_api_honours_them(migrated, settings):
    created = run_jobdeck(
        migrated, "tokens", "create", "ci-bot", "--role", "admin", "--expires", "90d", "--json"
    )
    issued = json.loads(created.stdout)
    runtime = start(settings)
    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()
    headers = {"Authorization": f"Bearer {issued['token']}"}

    assert created.returncode == 0, created.stderr
    assert set(issued) == {"name", "role", "token"}
    assert (issued["name"], issued["role"]) == ("ci-bot", "admin")
    assert client.get("/api/core/tasks/", headers=headers).status_code == 200

    listed = json.loads(run_jobdeck(migrated, "tokens", "list", "--json").stdout)
    revoked = run_jobdeck(migrated, "tokens", "revoke", "ci-bot")
    runtime.tokens.check_cache = 0

    assert [(token["name"], token["role"], token["revoked_at"]) for token in listed] == [
        ("ci-bot", "admin", None)
    ]
    assert listed[0]["expires_at"] is not None
    assert issued["token"] not in json.dumps(listed)
    assert revoked.returncode == 0, revoked.stderr
    assert client.get("/api/core/tasks/", headers=headers).status_code == 401
    actions = [(entry.action, entry.target, entry.source) for entry in runtime.audit.entries().entries]
    assert actions == [("token.revoke", "ci-bot", "cli"), ("token.create", "ci-bot", "cli")]


def test_the_plain_output_shows_the_token_once(migrated):
    created = run_jobdeck(migrated, "tokens", "create", "grafana", "--role", "viewer")

    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("jdk_")
    assert token not in run_jobdeck(migrated, "tokens", "list").stdout


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["tokens", "create", "x", "--role", "admin", "--expires", "soon"], "a duration is a whole number"),
        (["tokens", "revoke", "nobody"], "no live token is called 'nobody'"),
        (["tokens", "create", "bad name", "--role", "admin"], "a token name is"),
    ],
)
def test_bad_input_is_one_red_line(migrated, arguments, expected):
    assert_one_red_line(run_jobdeck(migrated, *arguments), expected)


def test_a_second_live_token_of_one_name_is_one_red_line(migrated):
    assert run_jobdeck(migrated, "tokens", "create", "ci-bot", "--role", "admin").returncode == 0

    assert_one_red_line(
        run_jobdeck(migrated, "tokens", "create", "ci-bot", "--role", "viewer"),
        "a token called 'ci-bot' exists",
    )
