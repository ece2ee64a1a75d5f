"""What every command shares: the process's runtime, the operator, audited actions, confirmations."""

from __future__ import annotations

import getpass
import sys
from contextlib import AbstractContextManager

import click

from jobs.platform.errors import BadArguments
from jobs.runtime import Runtime, start
from monitoring.audit import Action

#: What the audit log says a command-line action came from.
CLI_SOURCE = "cli"


def runtime() -> Runtime:
    """The runtime of this invocation, started on first use (a test may hand one in as ``obj``)."""
    context = click.get_current_context().find_root()
    if not isinstance(context.obj, Runtime):
        context.obj = start()
    return context.obj


def started_runtime() -> Runtime | None:
    """The runtime if this invocation started one already (to name its URLs in an error)."""
    context = click.get_current_context(silent=True)
    obj = context.find_root().obj if context else None
    return obj if isinstance(obj, Runtime) else None


def operator() -> str:
    """The operator's user name, for the audit log."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def audited(action: str, target: str | None) -> AbstractContextManager[Action]:
    """Run the block as one audited action of the operator, from ``cli``."""
    return runtime().audit.audited(actor=operator(), action=action, target=target, source=CLI_SOURCE)


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal; elsewhere refuse unless ``--yes`` was given (a script must say so)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadArguments(f"{question} Standard input is not a terminal: add --yes to confirm.")
    click.confirm(question, abort=True)
