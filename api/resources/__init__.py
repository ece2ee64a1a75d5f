"""One blueprint per resource, each a thin face on the read and act models (jobs.runtime.Runtime)."""

from __future__ import annotations

from flask import current_app

from jobs.runtime import Runtime


def runtime() -> Runtime:
    """This app's runtime: its TaskMonitor, TaskManager, tokens, audit log, database."""
    return current_app.extensions["jobdeck_runtime"]
