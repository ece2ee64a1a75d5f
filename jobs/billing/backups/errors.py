"""The error of the backups package."""

from __future__ import annotations

from jobs.platform.errors import JobdeckError


class BackupError(JobdeckError):
    """Raised when a backup cannot be taken, verified or restored."""
