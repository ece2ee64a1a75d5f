"""The audit log: who did what to which target, when, from where, and how it ended.

Every admin action of the API and the CLI is written here (the API with the token's name and the
client's address, the CLI with the operator's user name and ``cli``). Entries are only added, never
changed; reading goes newest first with a cursor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from jobs.platform.database import guarded_session
from jobs.platform.errors import JobdeckError
from jobs.platform.tables import Base, one_of, utc_now

#: How an action ended: done; refused (bad input, wrong state: nothing changed); failed (an error).
OK, REFUSED, FAILED = "ok", "refused", "failed"
OUTCOMES = (OK, REFUSED, FAILED)
DEFAULT_PAGE_SIZE = 50


class AuditEntry(Base):
    """One operator action (who did what to which target), kept for accountability."""

    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint(one_of("outcome", OUTCOMES), name="outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    #: Where the action came from: the client's address for the API, ``cli`` for the command line.
    source: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16), default=OK)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


@dataclass(frozen=True)
class AuditRecord:
    """An audit entry as read."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    source: str | None
    outcome: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    """Entries newest first; pass ``next_cursor`` back for older ones (None at the end)."""

    entries: list[AuditRecord]
    next_cursor: int | None


@dataclass
class Action:
    """An action under way: what the caller adds to ``details`` is written with its outcome."""

    details: dict[str, Any] = field(default_factory=dict)
    outcome: str = OK


class AuditLog:
    """Writes and reads the audit log.

    Parameters:
      sessions(sessionmaker): sessions on the jobdeck database.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str | None = None,
        source: str | None = None,
        outcome: str = OK,
        details: dict[str, Any] | None = None,
    ) -> int:
        """Add one entry; return its id."""
        entry = AuditEntry(
            at=utc_now(),
            actor=actor[:100],
            action=action[:64],
            target=None if target is None else str(target)[:200],
            source=None if source is None else source[:200],
            outcome=outcome,
            details=details or {},
        )
        with guarded_session(self.sessions) as session, session.begin():
            session.add(entry)
            session.flush()
            return entry.id

    @contextmanager
    def audited(
        self, *, actor: str, action: str, target: str | None = None, source: str | None = None
    ) -> Iterator[Action]:
        """Run the block as one audited action: ``ok``, else ``refused`` (a jobdeck error) or ``failed``.

        The entry is written when the block ends, with what it put in ``Action.details``; the
        block's exception, if any, goes on to the caller.
        """
        action_state = Action()
        try:
            yield action_state
        except JobdeckError as error:
            action_state.outcome, action_state.details["error"] = REFUSED, str(error)
            raise
        except Exception as error:
            action_state.outcome, action_state.details["error"] = FAILED, type(error).__name__
            raise
        finally:
            self.record(
                actor=actor,
                action=action,
                target=target,
                source=source,
                outcome=action_state.outcome,
                details=action_state.details,
            )

    def entries(
        self,
        *,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> AuditPage:
        """Entries newest first, optionally of one actor or action; ``cursor`` is the last id seen."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
        if cursor is not None:
            query = query.where(AuditEntry.id < cursor)
        if actor is not None:
            query = query.where(AuditEntry.actor == actor)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        with guarded_session(self.sessions) as session:
            rows = list(session.scalars(query))
        records = [
            AuditRecord(
                row.id, row.at, row.actor, row.action, row.target, row.source, row.outcome, row.details
            )
            for row in rows[:limit]
        ]
        return AuditPage(records, records[-1].id if len(rows) > limit else None)
