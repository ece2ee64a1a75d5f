"""One-at-a-time locks of jobs that must not overlap (finance runs, reports): leases in Redis.

A lock is the STRING ``jobdeck:lock:<name>`` (``jobs.platform.keys``) whose value names its holder:
the process (broker id and pid) and a token of this one hold. It lives a short lease, three worker
heartbeats, which a thread of the holder renews every heartbeat while the block runs: a holder that
dies (SIGKILL, the OOM killer, a lost machine) stops renewing and its lock is gone within seconds,
where the old lock outlived it by the hard time limit and made the redelivered run skip (#10).

Acquiring, renewing and releasing are each one Lua call that compares the value first, so a holder
whose lease lapsed can neither renew nor delete the lock of the run that took over; the block calls
:meth:`Lease.check` just before it commits, as its fence. A run that finds the lock held by a live
holder raises :class:`LockHeld`, a TransientError that JobRetries tries again later: a lock never
turns a run into a "skipped" success.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from jobs.platform.context import JobContext, current
from jobs.platform.errors import TransientError
from jobs.platform.keys import LOCK_PREFIX

logger = logging.getLogger(__name__)

#: A lease lasts this many worker heartbeats (JOBDECK_HEARTBEAT_INTERVAL) and is renewed every one.
DEFAULT_LEASE_HEARTBEATS = 3

# KEYS[1] the lock; ARGV[1] the holder, ARGV[2] the lease in ms. "0" is what Dramatiq's
# ConcurrentRateLimiter, the lock before this one, left behind on release: free.
_ACQUIRE = """
local value = redis.call('get', KEYS[1])
if value and value ~= '0' then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_RENEW = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('pexpire', KEYS[1], ARGV[2])
"""
_RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('del', KEYS[1])
"""


class LockHeld(TransientError):
    """Raised when a live run holds the lock; the job is tried again later, never skipped."""


class LockLost(TransientError):
    """Raised when a holder's lease lapsed and another run may have the lock: the holder must not commit."""


def process_name(context: JobContext) -> str:
    """This process as the holder of a lock or a claim: its broker id and pid."""
    return f"{context.broker.broker_id}:{os.getpid()}"


class Lease:
    """One hold of a lock, renewed by a daemon thread from ``start()`` until ``release()``.

    Parameters:
      client(redis.Redis): the Redis the lock lives in (the broker's).
      name(str): the lock's name; its key is LOCK_PREFIX + name.
      holder(str): the value naming this hold (process name and a token).
      lease(float): seconds the lock lives unless renewed.
      renew_every(float): seconds between renewals, below ``lease``.
      max_hold(float): seconds after which renewing stops (the hard time limit): no lock lives for ever.
    """

    def __init__(
        self,
        *,
        client: redis.Redis,
        name: str,
        holder: str,
        lease: float,
        renew_every: float,
        max_hold: float,
    ) -> None:
        self.client = client
        self.name = name
        self.key = LOCK_PREFIX + name
        self.holder = holder
        self.lease_ms = max(1, int(lease * 1000))
        self.renew_every = renew_every
        self.max_hold = max_hold
        self.lost = False
        self._stopped = threading.Event()
        self._renewer: threading.Thread | None = None
        self._scripts = {script: client.register_script(script) for script in (_ACQUIRE, _RENEW, _RELEASE)}

    def acquire(self) -> bool:
        """Take the lock if it is free; one round trip."""
        return bool(self._run(_ACQUIRE, self.lease_ms))

    def start(self) -> None:
        """Renew the lease every ``renew_every`` seconds, on a daemon thread, until released."""
        self._renewer = threading.Thread(target=self._renew, name=f"jobdeck-lock-{self.name}", daemon=True)
        self._renewer.start()

    def check(self) -> None:
        """Raise LockLost unless this hold still has the lock: the fence before a commit. One round trip."""
        if self.lost or self.holder_now() != self.holder:
            raise LockLost(f"the lock {self.name} was lost (its lease lapsed); not committing, trying again")

    def holder_now(self) -> str | None:
        """Who holds the lock now, or None; one round trip."""
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def release(self) -> None:
        """Stop renewing and delete the lock if it is still this hold's; one round trip."""
        self._stopped.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self._run(_RELEASE)
        except redis.RedisError:
            # The lease lapses on its own within seconds; the job's outcome does not depend on this.
            logger.warning("Could not release the lock %s; it lapses by itself.", self.name, exc_info=True)

    def _renew(self) -> None:
        deadline = time.monotonic() + self.max_hold
        while not self._stopped.wait(self.renew_every):
            if time.monotonic() > deadline:
                logger.warning("Lock %s held past the hard time limit; no longer renewed.", self.name)
                return
            try:
                renewed = self._run(_RENEW, self.lease_ms)
            except redis.RedisError:
                logger.warning("Could not renew the lock %s; trying again.", self.name, exc_info=True)
                continue
            if not renewed:
                self.lost = True
                logger.error("Lock %s lapsed before it was renewed; its holder will not commit.", self.name)
                return

    def _run(self, script: str, *args: object) -> int:
        return self._scripts[script](keys=[self.key], args=[self.holder, *args])


@contextmanager
def exclusive(name: str, *, lease: float | None = None) -> Iterator[Lease]:
    """Hold the lock ``name`` for the block; raise LockHeld if a live run holds it.

    The lease is ``lease`` seconds (default: DEFAULT_LEASE_HEARTBEATS heartbeat intervals), renewed
    a third of it apart while the block runs; call the yielded lease's ``check()`` before committing.
    """
    context = current()
    lease = lease or DEFAULT_LEASE_HEARTBEATS * context.settings.heartbeat_interval
    held = Lease(
        client=context.broker.client,
        name=name,
        holder=f"{process_name(context)}:{uuid.uuid4().hex}",
        lease=lease,
        renew_every=lease / DEFAULT_LEASE_HEARTBEATS,
        max_hold=context.settings.time_limit,
    )
    if not held.acquire():
        holder = held.holder_now() or "a run that has just finished"
        raise LockHeld(f"the lock {name} is held by {holder}; trying again later")
    held.start()
    try:
        yield held
    finally:
        held.release()
