"""/healthz answers while the process runs; /readyz whether Redis and the database answer (503 if not)."""

from __future__ import annotations

from api import create_app
from jobs.platform.database import upgrade
from jobs.runtime import start


def test_readyz_is_ok_with_redis_and_database(runtime, settings):
    upgrade(settings.database_url)
    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "checks": {"redis": "ok", "database": "ok"}}


def test_readyz_names_redis_when_it_is_down_and_healthz_stays_up(settings):
    runtime = start(settings.with_overrides(redis_url="redis://127.0.0.1:1/0"))
    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()

    ready = client.get("/readyz")
    alive = client.get("/healthz")

    assert ready.status_code == 503
    body = ready.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"].startswith("Redis cannot be reached")
    assert body["checks"]["database"] == "ok"
    assert alive.status_code == 200
    assert alive.get_json() == {"status": "ok"}


def test_unknown_path_is_the_one_json_error_shape(runtime):
    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()

    response = client.get("/no/such/thing")

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    assert set(response.get_json()["error"]) == {"code", "message", "details"}
