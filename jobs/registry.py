"""The modules that declare jobdeck's actors, and looking actors up by name."""

from __future__ import annotations

import importlib

import dramatiq

from jobs.errors import UnknownJob

#: Imported after the broker is set up, so every actor binds to it.
ACTOR_MODULES = (
    "jobs.diagnostics",
    "jobs.finance",
    "jobs.reminders",
    "jobs.reports",
    "jobs.notifications",
    "jobs.data",
    "jobs.maintenance",
)


def load_actors() -> None:
    """Import every actor module so that the global broker knows every actor."""
    for module in ACTOR_MODULES:
        importlib.import_module(module)


def get_actor(name: str) -> dramatiq.Actor:
    """The actor called ``name``, or UnknownJob listing the names there are."""
    broker = dramatiq.get_broker()
    try:
        return broker.get_actor(name)
    except dramatiq.errors.ActorNotFound:
        known = ", ".join(sorted(broker.get_declared_actors()))
        raise UnknownJob(f"no job is called {name!r}; the jobs are: {known}") from None
