"""An API app on the test's Redis and database, and tokens of every kind to call it with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import text

from api import create_app
from jobs.platform.database import upgrade
from jobs.platform.tables import utc_now
from monitoring.access import ADMIN, VIEWER


@dataclass(frozen=True)
class Tokens:
    """One token of each kind, as their Authorization headers."""

    admin: dict[str, str]
    viewer: dict[str, str]
    revoked: dict[str, str]
    expired: dict[str, str]
    bad: dict[str, str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def database(settings) -> str:
    """The test's database, migrated."""
    upgrade(settings.database_url)
    return settings.database_url


@pytest.fixture
def app(runtime, database):
    """The web application on this test's runtime."""
    return create_app({"RUNTIME": runtime, "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def tokens(runtime, database) -> Tokens:
    admin = runtime.tokens.create("admin-bot", ADMIN)
    viewer = runtime.tokens.create("viewer-bot", VIEWER)
    revoked = runtime.tokens.create("revoked-bot", ADMIN)
    runtime.tokens.revoke("revoked-bot")
    expired = runtime.tokens.create("expired-bot", ADMIN, expires_in=timedelta(days=1))
    with runtime.engine.begin() as connection:
        connection.execute(
            text("UPDATE api_tokens SET expires_at = :past WHERE name = 'expired-bot'"),
            {"past": utc_now() - timedelta(seconds=1)},
        )
    return Tokens(
        admin=bearer(admin.token),
        viewer=bearer(viewer.token),
        revoked=bearer(revoked.token),
        expired=bearer(expired.token),
        bad=bearer("jdk_" + "not-a-real-token" * 3),
    )
