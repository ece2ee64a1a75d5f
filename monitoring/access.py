"""API tokens and their roles: created once, stored only as hashes, checked in constant time.

A token is shown once, when it is created; the database keeps its SHA-256 (a token is 256 random
bits, so a fast hash is as safe as a slow one and costs nothing per request). A viewer reads
everything but the audit log and the backups; an admin also acts. The API and the CLI share this.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import CHAR, CheckConstraint, Index, String, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from jobs.platform.database import guarded_session
from jobs.platform.errors import AlreadyExists, BadArguments, NotFound
from jobs.platform.tables import Base, one_of, utc_now

VIEWER, ADMIN = "viewer", "admin"
ROLES = (VIEWER, ADMIN)
#: What each role may do: an admin is also a viewer.
ROLE_GRANTS = {VIEWER: (VIEWER,), ADMIN: (VIEWER, ADMIN)}
#: Tokens start with this, so that a leaked one is recognisable in a log or a scan.
TOKEN_PREFIX = "jdk_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
#: Seconds a checked token is trusted before the database is asked again (a revocation from
#: another process takes effect within this), and between two writes of its last use.
DEFAULT_CHECK_CACHE_S = 5.0
DEFAULT_LAST_USE_EVERY_S = 60.0
DURATION_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ApiToken(Base):
    """An API bearer token; only its SHA-256 is stored. One live token per name."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(one_of("role", ROLES), name="role"),
        Index(
            "uq_api_tokens_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=VIEWER)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the token itself."""

    name: str
    role: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiToken) -> TokenInfo:
        return cls(row.name, row.role, row.created_at, row.expires_at, row.last_used_at, row.revoked_at)

    @property
    def grants(self) -> tuple[str, ...]:
        """The roles this token acts with (an admin is a viewer too)."""
        return ROLE_GRANTS[self.role]

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: the only time its secret is known."""

    name: str
    role: str
    token: str
    expires_at: datetime | None


def parse_duration(text_value: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or ``2w`` as a timedelta; BadArguments otherwise."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([mhdw])\s*", text_value or "")
    if not match or int(match.group(1)) == 0:
        raise BadArguments(
            f"a duration is a whole number and a unit (m, h, d, w), such as 90d; got {text_value!r}"
        )
    return timedelta(seconds=int(match.group(1)) * DURATION_UNITS[match.group(2)])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccessTokens:
    """Creates, lists, revokes and checks API tokens.

    Parameters:
      sessions(sessionmaker): sessions on the jobdeck database.
      check_cache(float): seconds a checked token is trusted without asking the database. Default 5.
      last_use_every(float): seconds between two writes of a token's last use. Default 60.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        check_cache: float = DEFAULT_CHECK_CACHE_S,
        last_use_every: float = DEFAULT_LAST_USE_EVERY_S,
    ) -> None:
        self.sessions = sessions
        self.check_cache = check_cache
        self.last_use_every = last_use_every
        self._checked: dict[str, tuple[float, ApiTokenView]] = {}
        self._lock = threading.Lock()

    def create(self, name: str, role: str, expires_in: timedelta | None = None) -> IssuedToken:
        """A new token for ``name``; AlreadyExists if a live token has that name."""
        if not NAME_PATTERN.match(name or ""):
            raise BadArguments(
                "a token name is 1-100 letters, digits, '_', '.', '@' or '-', starting with a letter or digit"
            )
        if role not in ROLES:
            raise BadArguments(f"a role is one of {', '.join(ROLES)}; got {role!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utc_now()
        expires_at = now + expires_in if expires_in else None
        row = ApiToken(
            name=name, role=role, token_hash=token_hash(token), created_at=now, expires_at=expires_at
        )
        try:
            with self._session() as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise AlreadyExists(
                f"a token called {name!r} exists; revoke it first or choose another name"
            ) from None
        return IssuedToken(name, role, token, expires_at)

    def list(self) -> list[TokenInfo]:
        """Every token, live, expired and revoked, oldest first."""
        with self._session() as session:
            return [
                TokenInfo.from_row(row) for row in session.scalars(select(ApiToken).order_by(ApiToken.id))
            ]

    def revoke(self, name: str) -> TokenInfo:
        """Revoke the live token called ``name`` (at once in this process, within check_cache elsewhere)."""
        with self._session() as session, session.begin():
            row = session.scalars(
                select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
            ).one_or_none()
            if row is None:
                raise NotFound(f"no live token is called {name!r}")
            row.revoked_at = utc_now()
            revoked = TokenInfo.from_row(row)
        with self._lock:
            self._checked = {key: value for key, value in self._checked.items() if value[1].info.name != name}
        return revoked

    def verify(self, token: str) -> TokenInfo | None:
        """The token's details if it is live, else None. Usually no database round trip (see check_cache)."""
        if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_hash(token)
        now_monotonic = time.monotonic()
        with self._lock:
            cached = self._checked.get(digest)
        if cached is None or now_monotonic - cached[0] > self.check_cache:
            view = self._load(digest)
            if view is None:
                return None
            cached = (now_monotonic, view)
            with self._lock:
                self._checked[digest] = cached
        view = cached[1]
        # The lookup went by hash through an index; compare the hash itself in constant time.
        if not hmac.compare_digest(view.token_hash, digest):
            return None
        now = utc_now()
        if not view.info.usable(now):
            return None
        self._note_use(view, now)
        return view.info

    def _load(self, digest: str) -> ApiTokenView | None:
        with self._session() as session:
            row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).one_or_none()
            return None if row is None else ApiTokenView(row.id, row.token_hash, TokenInfo.from_row(row))

    def _note_use(self, view: ApiTokenView, now: datetime) -> None:
        last = view.info.last_used_at
        if last is not None and (now - last).total_seconds() < self.last_use_every:
            return
        with self._session() as session, session.begin():
            session.execute(update(ApiToken).where(ApiToken.id == view.token_id).values(last_used_at=now))
        refreshed = ApiTokenView(view.token_id, view.token_hash, replace(view.info, last_used_at=now))
        with self._lock:
            self._checked[view.token_hash] = (time.monotonic(), refreshed)

    def _session(self) -> AbstractContextManager[Session]:
        return guarded_session(self.sessions)


@dataclass(frozen=True)
class ApiTokenView:
    """What the check cache keeps of a token row."""

    token_id: int
    token_hash: str
    info: TokenInfo
