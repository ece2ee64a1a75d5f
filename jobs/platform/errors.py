"""jobdeck's exceptions. Every error jobdeck raises on purpose derives from JobdeckError."""

from __future__ import annotations


class JobdeckError(Exception):
    """Base class of every error jobdeck raises on purpose; its message is fit for a user."""


class SettingsError(JobdeckError):
    """Raised when an environment variable holds a value jobdeck cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


class PermanentError(JobdeckError):
    """Raised by a job when trying again cannot help; such a job is never retried."""


class TransientError(JobdeckError):
    """Raised when a database or mail server connection is lost; retried outside the business retries."""


class ServiceUnavailable(JobdeckError):
    """Raised when Redis or the database cannot be reached at start-up or from the CLI."""


class NotMigrated(ServiceUnavailable):
    """Raised when the database has none of jobdeck's tables yet (or lacks one): it is reached,
    but not ready until ``jobdeck db upgrade`` has run."""


class UnknownJob(JobdeckError):
    """Raised when a job name names no actor."""


class BadArguments(JobdeckError):
    """Raised when a job's arguments are not JSON or do not fit the actor's signature."""


class StorageError(JobdeckError):
    """Raised when a directory jobdeck writes to cannot be created or written."""


class NotFound(JobdeckError):
    """Raised when a report, export, backup, token or audit entry asked for does not exist."""


class UnknownSchedule(NotFound):
    """Raised when a schedule name names no enabled schedule."""


class UnknownTask(NotFound):
    """Raised when a task id is unknown to the monitoring store (never sent, or expired)."""


class AlreadyExists(JobdeckError):
    """Raised when something is created under a name another live one already has."""


class NotReady(JobdeckError):
    """Raised when a file asked for exists but cannot be had now (an export still running, expired)."""


class ActionRefused(JobdeckError):
    """Raised when a task cannot take an action in its state (retrying a task that succeeded)."""


class NotStarted(JobdeckError):
    """Raised when a job reads the process context before jobs.runtime.start() built it."""


class MissingExtra(PermanentError):
    """Raised when a feature needs an optional package that is not installed; names the extra.

    Permanent: a retry on the same worker cannot install it.
    """
