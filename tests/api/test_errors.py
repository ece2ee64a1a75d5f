"""Bad input gets 400 (never a 5xx), in the one error shape; 404, 405, 409, 413 and 429 likewise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api import create_app
from jobs.billing.maintenance import cleanup_cache

NOW = datetime.now(UTC)


def assert_error(response, status: int, code: str, text: str = "") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert text in body["error"]["message"] + str(body["error"]["details"])
    assert "Traceback" not in response.get_data(as_text=True)
    return body["error"]


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"task_name": "no_such_job"}, "unknown_job", "no job is called 'no_such_job'"),
        (
            {"task_name": "long_running_task", "kwargs": {"hours": 2}},
            "bad_arguments",
            "cannot take these arguments",
        ),
        ({"task_name": "test_task", "delay": -5}, "validation_error", "delay"),
        ({"task_name": "test_task", "delay": 8 * 86400}, "validation_error", "delay"),
        (
            {"task_name": "test_task", "eta": (NOW - timedelta(hours=1)).isoformat()},
            "bad_arguments",
            "in the past",
        ),
        ({"task_name": "test_task", "eta": "2030-01-01T00:00:00"}, "validation_error", "eta"),
        ({"task_name": "test_task", "delay": 1, "eta": NOW.isoformat()}, "validation_error", "not both"),
        ({"task_name": "test_task", "queue": "nowhere"}, "validation_error", "queue"),
        ({"task_name": "test_task", "args": "not a list"}, "validation_error", "args"),
        ({"task_name": 7}, "validation_error", "task_name"),
        ({"task_name": "test_task", "priority": 1}, "validation_error", "Unknown field"),
        ({}, "validation_error", "task_name"),
    ],
)
def test_bad_sends_are_400_naming_the_problem(client, tokens, body, code, text):
    assert_error(client.post("/api/core/tasks/", headers=tokens.admin, json=body), 400, code, text)


@pytest.mark.parametrize("raw", ["{bad json", "[1, 2]", '"text"', ""])
def test_malformed_bodies_are_400(client, tokens, raw):
    response = client.post(
        "/api/core/tasks/", headers=tokens.admin, data=raw, content_type="application/json"
    )

    assert_error(response, 400, "validation_error")


def test_unknown_query_fields_and_bad_query_values_are_400(client, tokens):
    assert_error(
        client.get("/api/core/tasks/history/?colour=red", headers=tokens.viewer),
        400,
        "validation_error",
        "Unknown",
    )
    assert_error(
        client.get("/api/core/tasks/history/?status=DONE", headers=tokens.viewer), 400, "validation_error"
    )
    assert_error(
        client.get("/api/core/tasks/history/?cursor=x", headers=tokens.viewer), 400, "validation_error"
    )
    assert_error(
        client.get("/api/core/tasks/stats/?window=5", headers=tokens.viewer), 400, "validation_error"
    )


def test_unknown_ids_are_404_and_wrong_methods_405(client, tokens):
    assert_error(client.get("/api/core/tasks/nope/", headers=tokens.viewer), 404, "unknown_task")
    assert_error(client.post("/api/core/tasks/nope/revoke/", headers=tokens.admin), 404, "unknown_task")
    assert_error(
        client.post("/api/core/workers/queues/nowhere/purge/", headers=tokens.admin), 404, "not_found"
    )
    assert_error(client.get("/api/core/exports/12/download/", headers=tokens.viewer), 404, "not_found")
    response = client.delete("/api/core/tasks/", headers=tokens.admin)
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_retrying_a_task_that_did_not_fail_is_409(client, tokens):
    sent = client.post("/api/core/tasks/", headers=tokens.admin, json={"task_name": "test_task"}).get_json()

    assert_error(
        client.post(f"/api/core/tasks/{sent['task_id']}/retry/", headers=tokens.admin), 409, "action_refused"
    )


def test_a_body_over_the_limit_is_413(runtime, database, tokens):
    client = create_app({"RUNTIME": runtime, "TESTING": True, "MAX_CONTENT_LENGTH": 2048}).test_client()

    response = client.post(
        "/api/core/tasks/", headers=tokens.admin, json={"task_name": "test_task", "args": ["x" * 4096]}
    )

    assert_error(response, 413, "request_entity_too_large", "2048 bytes")


def test_the_path_without_its_trailing_slash_answers_too(client, tokens):
    assert client.get("/api/core/tasks", headers=tokens.viewer).status_code == 200
    assert (
        client.post("/api/core/tasks", headers=tokens.admin, json={"task_name": "test_task"}).status_code
        == 202
    )


def test_past_the_rate_limit_is_429_with_retry_after_per_token(runtime, settings, database, tokens):
    runtime.settings = settings.with_overrides(api_read_rate="3/minute", api_write_rate="1/minute")
    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()

    reads = [client.get("/api/core/tasks/", headers=tokens.viewer).status_code for _ in range(4)]
    other_token = client.get("/api/core/tasks/", headers=tokens.admin).status_code
    writes = [
        client.post("/api/core/tasks/", headers=tokens.admin, json={"task_name": "test_task"}).status_code
        for _ in range(2)
    ]
    limited = client.get("/api/core/tasks/", headers=tokens.viewer)

    assert reads == [200, 200, 200, 429]
    assert other_token == 200
    assert writes == [202, 429]
    error = assert_error(limited, 429, "too_many_requests", "3 per 1 minute")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert error["details"] is None
    assert client.get("/healthz").status_code == 200


def test_stats_are_cached_briefly_and_cleanup_cache_clears_them(runtime, client, tokens):
    first = client.get("/api/core/tasks/stats/", headers=tokens.viewer).get_json()
    runtime.manager.send_task("test_task", ["counted"])
    cached = client.get("/api/core/tasks/stats/", headers=tokens.viewer).get_json()

    removed = cleanup_cache.fn()
    fresh = client.get("/api/core/tasks/stats/", headers=tokens.viewer).get_json()

    assert first == cached == {"window": 3600, "actors": []}
    assert removed == 1
    assert [(actor["actor"], actor["enqueued"]) for actor in fresh["actors"]] == [("test_task", 1)]
