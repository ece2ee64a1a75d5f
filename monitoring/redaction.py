"""What of a task is shown: arguments and results truncated, secrets masked, errors fingerprinted."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from jobs.platform.defaults import DEFAULT_DISPLAY_LIMIT

MASK = "***"
#: Values under keys that look like these are never shown.
SECRET_KEY = re.compile(r"pass(word|wd)?|token|secret|key|credential|authorization", re.IGNORECASE)
#: Parts of an error message that vary between occurrences of the same failure.
VARYING = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|0x[0-9a-f]+|\b\d+(\.\d+)?\b|'[^']*'|\"[^\"]*\"",
    re.IGNORECASE,
)


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every value under a secret-looking key replaced by ***."""
    if isinstance(value, dict):
        return {
            key: MASK if isinstance(key, str) and SECRET_KEY.search(key) else mask_secrets(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secrets(item) for item in value]
    return value


def summarise(value: Any, limit: int = DEFAULT_DISPLAY_LIMIT) -> str:
    """JSON text of ``value`` for display: secrets masked, cut at ``limit`` characters."""
    text = json.dumps(mask_secrets(value), default=str, ensure_ascii=False)
    if len(text) <= limit:
        return text
    return text[:limit] + f"… ({len(text) - limit} more characters)"


def fingerprint(error_type: str, message: str) -> str:
    """A short hash that is the same for failures differing only in ids, numbers and quoted values."""
    normalised = VARYING.sub("?", message)
    return hashlib.sha1(f"{error_type}\n{normalised}".encode()).hexdigest()[:12]
