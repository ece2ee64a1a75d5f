"""Each endpoint of the app's URL map x {no token, bad, revoked, expired, viewer, admin}: the expected status.

The endpoints come from app.url_map, so a new endpoint fails this test until it is classified below.
"""

from __future__ import annotations

import re

from api import create_app

#: Open to all: liveness, readiness, metrics (by default), the OpenAPI document and its page.
OPEN = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/openapi.json",
    "/api/docs",
    "/api/docs/assets/<path:filename>",
}
#: Admin only: every write, the audit log and the backups. Every other /api/core/ read is a viewer's.
ADMIN_ONLY = {
    ("POST", "/api/core/tasks/"),
    ("POST", "/api/core/tasks/<task_id>/revoke/"),
    ("POST", "/api/core/tasks/<task_id>/retry/"),
    ("POST", "/api/core/tasks/bulk/"),
    ("POST", "/api/core/chains/"),
    ("POST", "/api/core/workers/queues/<name>/purge/"),
    ("POST", "/api/core/workers/queues/<name>/dead/purge/"),
    ("POST", "/api/core/schedules/<name>/pause/"),
    ("POST", "/api/core/schedules/<name>/resume/"),
    ("POST", "/api/core/schedules/<name>/run/"),
    ("GET", "/api/core/backups/"),
    ("GET", "/api/core/audit/"),
}
VIEWER_READS = {
    "/api/core/tasks/",
    "/api/core/tasks/<task_id>/",
    "/api/core/tasks/<task_id>/result/",
    "/api/core/tasks/stats/",
    "/api/core/tasks/history/",
    "/api/core/tasks/failures/",
    "/api/core/workers/",
    "/api/core/workers/queues/",
    "/api/core/actors/",
    "/api/core/schedules/",
    "/api/core/schedules/<name>/",
    "/api/core/reports/",
    "/api/core/reports/<int(min=1, max=2147483647):report_id>/download/",
    "/api/core/exports/",
    "/api/core/exports/<int(min=1, max=2147483647):export_id>/download/",
}
#: A value for each path variable, by name.
PATH_VALUES = {
    "task_id": "no-such-task",
    "name": "default",
    "report_id": "1",
    "export_id": "1",
    "filename": "swagger-ui.css",
}
REFUSED = ("none", "bad", "revoked", "expired")


def endpoints(app) -> list[tuple[str, str]]:
    """(method, rule) of every route the app serves, but Flask's static files."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return found


def concrete(rule: str) -> str:
    """The rule with each ``<converter(...):name>`` replaced by a value for ``name``."""
    return re.sub(r"<(?:[^<>]*:)?(\w+)>", lambda match: PATH_VALUES[match.group(1)], rule)


def test_every_endpoint_is_classified(app):
    unclassified = [
        (method, rule)
        for method, rule in endpoints(app)
        if rule not in OPEN
        and (method, rule) not in ADMIN_ONLY
        and not (method == "GET" and rule in VIEWER_READS)
    ]

    assert unclassified == []
    assert len(endpoints(app)) >= 33


def test_the_auth_matrix(app, tokens):
    client = app.test_client()
    headers = {
        "none": {},
        "bad": tokens.bad,
        "revoked": tokens.revoked,
        "expired": tokens.expired,
        "viewer": tokens.viewer,
        "admin": tokens.admin,
    }
    mismatches = []
    for method, rule in endpoints(app):
        for who, header in headers.items():
            status = client.open(
                concrete(rule), method=method, headers=header, json={} if method == "POST" else None
            ).status_code
            allowed = _expected_allowed(method, rule, who)
            if allowed != (status not in (401, 403)) or (not allowed and status != _refusal(who)):
                mismatches.append((method, rule, who, status))

    assert mismatches == []


def _expected_allowed(method: str, rule: str, who: str) -> bool:
    if rule in OPEN:
        return True
    if who in REFUSED:
        return False
    return who == "admin" or (method, rule) not in ADMIN_ONLY


def _refusal(who: str) -> int:
    return 401 if who in REFUSED else 403


def test_a_refused_request_is_the_one_error_shape_with_a_challenge(client, tokens):
    anonymous = client.get("/api/core/tasks/")
    viewer = client.post("/api/core/tasks/", headers=tokens.viewer, json={"task_name": "test_task"})

    assert anonymous.status_code == 401
    assert anonymous.get_json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert viewer.status_code == 403
    assert viewer.get_json()["error"]["code"] == "forbidden"


def test_metrics_can_be_made_to_need_a_token(runtime, settings, tokens):
    runtime.settings = settings.with_overrides(metrics_token_required=True)
    client = create_app({"RUNTIME": runtime, "TESTING": True}).test_client()

    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=tokens.viewer).status_code == 200
