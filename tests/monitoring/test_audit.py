"""The audit log: every action with who, what, target, when, where from and outcome; read newest first."""

from __future__ import annotations

import pytest

from jobs.platform.database import make_session_factory
from jobs.platform.errors import ActionRefused
from monitoring.audit import FAILED, OK, REFUSED, AuditLog


@pytest.fixture
def audit(engine) -> AuditLog:
    return AuditLog(make_session_factory(engine))


def test_an_audited_action_is_written_with_its_outcome_and_details(audit):
    with audit.audited(actor="ci-bot", action="task.revoke", target="abc", source="10.0.0.7") as action:
        action.details["revoked"] = True

    [entry] = audit.entries().entries

    assert (entry.actor, entry.action, entry.target, entry.source, entry.outcome) == (
        "ci-bot",
        "task.revoke",
        "abc",
        "10.0.0.7",
        OK,
    )
    assert entry.details == {"revoked": True}
    assert entry.at.tzinfo is not None


def test_a_refused_action_is_written_refused_and_the_error_goes_on(audit):
    with pytest.raises(ActionRefused), audit.audited(actor="ops", action="task.retry", target="t1"):
        raise ActionRefused("only a failed task can be retried")

    [entry] = audit.entries().entries
    assert entry.outcome == REFUSED
    assert entry.details == {"error": "only a failed task can be retried"}


def test_a_failed_action_is_written_failed_naming_only_the_error_type(audit):
    with pytest.raises(RuntimeError), audit.audited(actor="ops", action="queue.purge", target="default"):
        raise RuntimeError("secret detail")

    [entry] = audit.entries().entries
    assert entry.outcome == FAILED
    assert entry.details == {"error": "RuntimeError"}


def test_entries_page_newest_first_and_filter(audit):
    for number in range(5):
        audit.record(actor="ops" if number % 2 else "ci-bot", action="task.send", target=str(number))

    first = audit.entries(limit=2)
    second = audit.entries(limit=2, cursor=first.next_cursor)
    third = audit.entries(limit=2, cursor=second.next_cursor)

    assert [entry.target for entry in first.entries + second.entries + third.entries] == [
        "4",
        "3",
        "2",
        "1",
        "0",
    ]
    assert third.next_cursor is None
    assert [entry.target for entry in audit.entries(actor="ops").entries] == ["3", "1"]
