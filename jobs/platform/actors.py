"""Looking jobdeck's actors up by name."""

from __future__ import annotations

import dramatiq

from jobs.platform.errors import UnknownJob


def get_actor(name: str) -> dramatiq.Actor:
    """The actor called ``name``, or UnknownJob listing the names there are."""
    broker = dramatiq.get_broker()
    try:
        return broker.get_actor(name)
    except dramatiq.errors.ActorNotFound:
        known = ", ".join(sorted(broker.get_declared_actors()))
        raise UnknownJob(f"no job is called {name!r}; the jobs are: {known}") from None
