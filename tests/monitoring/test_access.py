"""API tokens: shown once, stored as hashes, checked with expiry and revocation, last use recorded."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from jobs.platform.database import make_session_factory
from jobs.platform.errors import AlreadyExists, BadArguments, NotFound
from jobs.platform.tables import utc_now
from monitoring.access import ADMIN, VIEWER, AccessTokens, parse_duration, token_hash


@pytest.fixture
def tokens(engine) -> AccessTokens:
    return AccessTokens(make_session_factory(engine), check_cache=0, last_use_every=0)


def test_a_created_token_verifies_with_its_role_and_only_its_hash_is_stored(tokens, engine):
    issued = tokens.create("ci-bot", ADMIN)

    checked = tokens.verify(issued.token)

    assert checked.name == "ci-bot"
    assert checked.grants == (VIEWER, ADMIN)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_tokens")).all()
    assert len(rows) == 1
    assert issued.token not in repr(rows)
    assert rows[0]._mapping["token_hash"] == token_hash(issued.token)


def test_a_viewer_is_granted_only_viewing(tokens):
    issued = tokens.create("grafana", VIEWER)

    assert tokens.verify(issued.token).grants == (VIEWER,)


@pytest.mark.parametrize("wrong", ["", "nonsense", "jdk_", "jdk_" + "x" * 43, "x" * 10_000])
def test_unknown_tokens_do_not_verify(tokens, wrong):
    tokens.create("ci-bot", ADMIN)

    assert tokens.verify(wrong) is None


def test_a_revoked_token_no_longer_verifies_and_its_name_can_be_reused(tokens):
    first = tokens.create("ci-bot", ADMIN)
    assert tokens.verify(first.token) is not None

    revoked = tokens.revoke("ci-bot")
    second = tokens.create("ci-bot", VIEWER)

    assert revoked.revoked_at is not None
    assert tokens.verify(first.token) is None
    assert tokens.verify(second.token).role == VIEWER
    assert [(token.name, token.revoked_at is None) for token in tokens.list()] == [
        ("ci-bot", False),
        ("ci-bot", True),
    ]


def test_revocation_reaches_a_process_that_cached_the_token_within_its_cache_time(engine):
    sessions = make_session_factory(engine)
    web = AccessTokens(sessions, check_cache=0.2)
    cli = AccessTokens(sessions)
    issued = cli.create("ci-bot", ADMIN)
    assert web.verify(issued.token) is not None

    cli.revoke("ci-bot")

    time.sleep(0.3)
    assert web.verify(issued.token) is None


def test_an_expired_token_does_not_verify(tokens, engine):
    issued = tokens.create("temporary", VIEWER, expires_in=timedelta(days=1))
    assert tokens.verify(issued.token) is not None
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE api_tokens SET expires_at = :past"), {"past": utc_now() - timedelta(seconds=1)}
        )

    assert tokens.verify(issued.token) is None


def test_last_use_is_recorded(tokens):
    issued = tokens.create("ci-bot", ADMIN)
    assert tokens.list()[0].last_used_at is None

    tokens.verify(issued.token)

    assert tokens.list()[0].last_used_at is not None


def test_a_second_live_token_of_one_name_is_refused(tokens):
    tokens.create("ci-bot", ADMIN)

    with pytest.raises(AlreadyExists, match="a token called 'ci-bot' exists"):
        tokens.create("ci-bot", VIEWER)


@pytest.mark.parametrize(
    ("name", "role"), [("", ADMIN), ("has space", ADMIN), ("ok", "reader"), ("-x", ADMIN)]
)
def test_bad_names_and_roles_are_refused(tokens, name, role):
    with pytest.raises(BadArguments):
        tokens.create(name, role)


def test_revoking_an_unknown_name_says_so(tokens):
    with pytest.raises(NotFound, match="no live token is called 'nobody'"):
        tokens.revoke("nobody")


@pytest.mark.parametrize(
    ("text_value", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations_parse(text_value, expected):
    assert parse_duration(text_value) == expected


@pytest.mark.parametrize("text_value", ["", "90", "d", "0d", "-1d", "1y", "1.5d"])
def test_bad_durations_are_refused(text_value):
    with pytest.raises(BadArguments, match="a duration is a whole number and a unit"):
        parse_duration(text_value)
