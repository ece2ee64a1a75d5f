"""The one place that reads jobdeck's configuration from the environment.

Every process (web, worker, scheduler, CLI) calls :func:`load_settings` once at start-up and
passes the resulting :class:`Settings` on; nothing else in jobdeck reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import limits

from jobs.platform import defaults
from jobs.platform.cron import CronError, CronExpression
from jobs.platform.errors import SettingsError
from jobs.platform.queues import QUEUES


@dataclass(frozen=True)
class ScheduleOverride:
    """A deployment's change to the schedule of job ``name`` (JOBDECK_SCHEDULE_<NAME>[_WINDOW]).

    ``cron`` replaces the declared expression (or makes a job periodic that is not), ``disabled``
    turns the schedule off, ``window`` replaces its catch-up window (seconds); None keeps it.
    """

    name: str
    cron: CronExpression | None = None
    disabled: bool = False
    window: float | None = None

    @property
    def variable(self) -> str:
        return defaults.SCHEDULE_VARIABLE_PREFIX + self.name.upper()


@dataclass(frozen=True)
class Settings:
    """jobdeck's validated configuration. Durations are in seconds."""

    redis_url: str
    results_redis_url: str
    database_url: str
    timezone: ZoneInfo
    soft_time_limit: float
    time_limit: float
    max_retries: int
    retry_delay: float
    transient_retry_window: float
    var_dir: Path
    export_dir: Path
    backup_dir: Path
    report_dir: Path
    outbox_dir: Path
    smtp_url: str | None
    mail_from: str
    smtp_rate: float
    report_language: str
    backup_keep: int
    export_ttl_days: float
    report_file_ttl_days: float
    success_retention: int
    failure_retention: int
    heartbeat_interval: float
    poison_cap: int
    display_limit: int
    port: int
    redelivery_timeout: float
    maintenance_chance: int
    result_ttl: float
    redis_url_explicit: bool = field(default=True, compare=False)
    alert_webhook_url: str | None = None
    alert_emails: tuple[str, ...] = ()
    alert_interval: int = defaults.DEFAULT_ALERT_INTERVAL_S
    alert_fold_window: float = defaults.DEFAULT_ALERT_FOLD_WINDOW_S
    alert_failure_rate: float = defaults.DEFAULT_ALERT_FAILURE_RATE
    alert_failure_rate_window: int = defaults.DEFAULT_ALERT_FAILURE_RATE_WINDOW_S
    alert_failure_rate_min_tasks: int = defaults.DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS
    alert_queue_latency: float = defaults.DEFAULT_ALERT_QUEUE_LATENCY_S
    alert_scheduler_silence: float = defaults.DEFAULT_ALERT_SCHEDULER_SILENCE_S
    alerts_disabled: frozenset[str] = frozenset()
    overdue_reminder_days: tuple[int, ...] = defaults.DEFAULT_OVERDUE_REMINDER_DAYS
    worker_prometheus: bool = False
    api_read_rate: str = defaults.DEFAULT_API_READ_RATE
    api_write_rate: str = defaults.DEFAULT_API_WRITE_RATE
    api_max_body: int = defaults.DEFAULT_API_MAX_BODY_BYTES
    api_stats_cache: float = defaults.DEFAULT_API_STATS_CACHE_S
    metrics_token_required: bool = False
    schedule_overrides: tuple[ScheduleOverride, ...] = ()

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with some values replaced (tests and the CLI use it)."""
        return replace(self, **changes)

    @property
    def queues(self) -> tuple[str, ...]:
        return QUEUES


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read and validate the settings; raise SettingsError naming the first bad variable."""
    env = dict(_read_dotenv(Path(".env")) if dotenv and environ is None else {})
    env.update(os.environ if environ is None else environ)
    var_dir = Path(env.get("JOBDECK_VAR_DIR", defaults.DEFAULT_VAR_DIR)).resolve()
    redis_url, redis_url_explicit = _redis_url(env, var_dir)
    return Settings(
        redis_url=redis_url,
        redis_url_explicit=redis_url_explicit,
        results_redis_url=_url(env, "RESULTS_REDIS_URL", redis_url, ("redis", "rediss", "unix")),
        database_url=_url(
            env,
            "DATABASE_URL",
            f"sqlite:///{var_dir / 'jobdeck.sqlite3'}",
            ("sqlite", "postgresql", "postgresql+psycopg", "postgres"),
        ),
        timezone=_timezone(env),
        port=_whole(env, "PORT", defaults.DEFAULT_PORT, minimum=1),
        **_job_policy(env),
        **_files(env, var_dir),
        **_mail(env),
        **_monitoring(env),
        **_alerts(env),
        **_api(env),
        schedule_overrides=_schedule_overrides(env),
    )


def _api(env: Mapping[str, str]) -> dict[str, Any]:
    """The REST API's rate limits, body size, statistics cache and whether /metrics needs a token."""
    return {
        "api_read_rate": _rate(env, "JOBDECK_API_READ_RATE", defaults.DEFAULT_API_READ_RATE),
        "api_write_rate": _rate(env, "JOBDECK_API_WRITE_RATE", defaults.DEFAULT_API_WRITE_RATE),
        "api_max_body": _whole(
            env, "JOBDECK_API_MAX_BODY", defaults.DEFAULT_API_MAX_BODY_BYTES, minimum=1024
        ),
        "api_stats_cache": _number(
            env, "JOBDECK_API_STATS_CACHE", defaults.DEFAULT_API_STATS_CACHE_S, minimum=0
        ),
        "metrics_token_required": _choice(env, "JOBDECK_METRICS_TOKEN_REQUIRED", "off", ("on", "off"))
        == "on",
    }


def _job_policy(env: Mapping[str, str]) -> dict[str, Any]:
    """Time limits, retries and the broker's redelivery."""
    soft_limit = _positive_number(env, "JOBDECK_SOFT_TIME_LIMIT", defaults.DEFAULT_SOFT_TIME_LIMIT_S)
    hard_limit = _positive_number(env, "JOBDECK_TIME_LIMIT", defaults.DEFAULT_TIME_LIMIT_S)
    if soft_limit >= hard_limit:
        raise SettingsError(
            "JOBDECK_SOFT_TIME_LIMIT",
            f"must be below JOBDECK_TIME_LIMIT ({hard_limit:g} s), got {soft_limit:g}",
        )
    return {
        "soft_time_limit": soft_limit,
        "time_limit": hard_limit,
        "max_retries": _whole(env, "JOBDECK_MAX_RETRIES", defaults.DEFAULT_MAX_RETRIES, minimum=0),
        "retry_delay": _number(env, "JOBDECK_RETRY_DELAY", defaults.DEFAULT_RETRY_DELAY_S, minimum=0),
        "transient_retry_window": _number(
            env, "JOBDECK_TRANSIENT_RETRY_WINDOW", defaults.DEFAULT_TRANSIENT_RETRY_WINDOW_S, minimum=0
        ),
        "redelivery_timeout": _positive_number(
            env, "JOBDECK_REDELIVERY_TIMEOUT", defaults.DEFAULT_REDELIVERY_TIMEOUT_S
        ),
        "maintenance_chance": _whole(
            env, "JOBDECK_MAINTENANCE_CHANCE", defaults.DEFAULT_MAINTENANCE_CHANCE, minimum=0
        ),
        "result_ttl": _positive_number(env, "JOBDECK_RESULT_TTL", defaults.DEFAULT_RESULT_TTL_S),
    }


def _files(env: Mapping[str, str], var_dir: Path) -> dict[str, Any]:
    """Where exports, backups, reports and the outbox go, and how long they are kept."""
    return {
        "var_dir": var_dir,
        "export_dir": _directory(env, "JOBDECK_EXPORT_DIR", var_dir / "exports"),
        "backup_dir": _directory(env, "JOBDECK_BACKUP_DIR", var_dir / "backups"),
        "report_dir": _directory(env, "JOBDECK_REPORT_DIR", var_dir / "reports"),
        "outbox_dir": _directory(env, "JOBDECK_OUTBOX_DIR", var_dir / "outbox"),
        "report_language": _choice(
            env, "JOBDECK_REPORT_LANGUAGE", defaults.DEFAULT_REPORT_LANGUAGE, defaults.REPORT_LANGUAGES
        ),
        "backup_keep": _whole(env, "JOBDECK_BACKUP_KEEP", defaults.DEFAULT_BACKUP_KEEP, minimum=1),
        "export_ttl_days": _positive_number(env, "JOBDECK_EXPORT_TTL_DAYS", defaults.DEFAULT_EXPORT_TTL_DAYS),
        "report_file_ttl_days": _positive_number(
            env, "JOBDECK_REPORT_FILE_TTL_DAYS", defaults.DEFAULT_REPORT_FILE_TTL_DAYS
        ),
    }


def _mail(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "overdue_reminder_days": _days(
            env, "JOBDECK_OVERDUE_REMINDER_DAYS", defaults.DEFAULT_OVERDUE_REMINDER_DAYS
        ),
        "smtp_url": _url(env, "SMTP_URL", None, ("smtp", "smtps")),
        "mail_from": env.get("JOBDECK_MAIL_FROM") or defaults.DEFAULT_MAIL_FROM,
        "smtp_rate": _positive_number(env, "JOBDECK_SMTP_RATE", defaults.DEFAULT_SMTP_RATE),
    }


def _monitoring(env: Mapping[str, str]) -> dict[str, Any]:
    """Retention, heartbeats, the poison cap and how much of a task is kept for display."""
    return {
        "success_retention": int(
            _positive_number(env, "JOBDECK_SUCCESS_RETENTION", defaults.DEFAULT_SUCCESS_RETENTION_S)
        ),
        "failure_retention": int(
            _positive_number(env, "JOBDECK_FAILURE_RETENTION", defaults.DEFAULT_FAILURE_RETENTION_S)
        ),
        "heartbeat_interval": _positive_number(
            env, "JOBDECK_HEARTBEAT_INTERVAL", defaults.DEFAULT_HEARTBEAT_INTERVAL_S
        ),
        "poison_cap": _whole(env, "JOBDECK_POISON_CAP", defaults.DEFAULT_POISON_CAP, minimum=1),
        "display_limit": _whole(env, "JOBDECK_DISPLAY_LIMIT", defaults.DEFAULT_DISPLAY_LIMIT, minimum=100),
        # Off by default: a PaaS exposes no port of a worker dyno to scrape, and the web process's
        # /metrics serves the cluster's figures from the store; on, each worker process serves
        # Dramatiq's own per-process metrics, at about a tenth of its CPU per message (issue 9).
        "worker_prometheus": _choice(env, "JOBDECK_WORKER_PROMETHEUS", "off", ("on", "off")) == "on",
    }


def _alerts(env: Mapping[str, str]) -> dict[str, Any]:
    """Where alerts go and the rules' thresholds."""
    return {
        "alert_webhook_url": _url(env, "JOBDECK_ALERT_WEBHOOK_URL", None, ("http", "https")),
        "alert_emails": _emails(env, "JOBDECK_ALERT_EMAILS"),
        "alert_interval": _whole(env, "JOBDECK_ALERT_INTERVAL", defaults.DEFAULT_ALERT_INTERVAL_S, minimum=1),
        "alert_fold_window": _positive_number(
            env, "JOBDECK_ALERT_FOLD_WINDOW", defaults.DEFAULT_ALERT_FOLD_WINDOW_S
        ),
        "alert_failure_rate": _fraction(
            env, "JOBDECK_ALERT_FAILURE_RATE", defaults.DEFAULT_ALERT_FAILURE_RATE
        ),
        "alert_failure_rate_window": _whole(
            env, "JOBDECK_ALERT_FAILURE_RATE_WINDOW", defaults.DEFAULT_ALERT_FAILURE_RATE_WINDOW_S, minimum=60
        ),
        "alert_failure_rate_min_tasks": _whole(
            env,
            "JOBDECK_ALERT_FAILURE_RATE_MIN_TASKS",
            defaults.DEFAULT_ALERT_FAILURE_RATE_MIN_TASKS,
            minimum=1,
        ),
        "alert_queue_latency": _positive_number(
            env, "JOBDECK_ALERT_QUEUE_LATENCY", defaults.DEFAULT_ALERT_QUEUE_LATENCY_S
        ),
        "alert_scheduler_silence": _positive_number(
            env, "JOBDECK_ALERT_SCHEDULER_SILENCE", defaults.DEFAULT_ALERT_SCHEDULER_SILENCE_S
        ),
        "alerts_disabled": _names(env, "JOBDECK_ALERTS_DISABLED", defaults.ALERT_RULES),
    }


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name) or default
    try:
        limits.parse_many(value)
    except ValueError:
        raise SettingsError(
            name, f"must be rates such as '1200/minute' or '20/second;500/hour', got {value!r}"
        ) from None
    return value


def _schedule_overrides(env: Mapping[str, str]) -> tuple[ScheduleOverride, ...]:
    """JOBDECK_SCHEDULE_<NAME> (a cron expression or "off") and JOBDECK_SCHEDULE_<NAME>_WINDOW."""
    prefix, suffix = defaults.SCHEDULE_VARIABLE_PREFIX, defaults.SCHEDULE_WINDOW_SUFFIX
    found: dict[str, dict[str, Any]] = {}
    for variable in sorted(env):
        raw = (env[variable] or "").strip()
        if not variable.startswith(prefix) or not raw:
            continue
        name = variable[len(prefix) :]
        if name.endswith(suffix):
            window = _number(env, variable, 0, minimum=0)
            found.setdefault(name[: -len(suffix)].lower(), {})["window"] = window
        elif raw.lower() == defaults.SCHEDULE_OFF:
            found.setdefault(name.lower(), {})["disabled"] = True
        else:
            try:
                cron = CronExpression.parse(raw)
            except CronError as error:
                raise SettingsError(variable, f'must be a cron expression or "off": {error}') from None
            found.setdefault(name.lower(), {})["cron"] = cron
    return tuple(ScheduleOverride(name, **changes) for name, changes in sorted(found.items()))


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def _redis_url(env: Mapping[str, str], var_dir: Path) -> tuple[str, bool]:
    if env.get("REDIS_URL"):
        return _url(env, "REDIS_URL", None, ("redis", "rediss", "unix")), True
    # make run writes the embedded server's address here so every process finds the same one.
    url_file = var_dir / defaults.REDIS_URL_FILE
    if url_file.is_file():
        written = url_file.read_text(encoding="utf-8").strip()
        if written:
            return written, False
    return defaults.DEFAULT_REDIS_URL, False


def _url(env: Mapping[str, str], name: str, default: str | None, schemes: tuple[str, ...]) -> str | None:
    value = env.get(name) or default
    if value is None:
        return None
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise SettingsError(
            name, f"must be a URL starting with one of {', '.join(s + '://' for s in schemes)}"
        )
    return value


def _number(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, integer: bool = False
) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(name, f"must be {kind}, got {raw!r}") from None
    if value < minimum or value != value:
        raise SettingsError(name, f"must be at least {minimum:g}, got {raw!r}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    return int(_number(env, name, default, minimum=minimum, integer=True))


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default, minimum=0)
    if value == 0:
        raise SettingsError(name, "must be greater than 0")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    value = _positive_number(env, name, default)
    if value > 1:
        raise SettingsError(name, f"must be a fraction between 0 and 1, got {env[name]!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> list[str]:
    return [item.strip() for item in (env.get(name) or "").split(",") if item.strip()]


def _days(env: Mapping[str, str], name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    items = _list(env, name)
    if not items:
        return default
    try:
        days = tuple(int(item) for item in items)
    except ValueError:
        raise SettingsError(name, f"must be whole days separated by commas, got {env[name]!r}") from None
    if any(day < 1 for day in days) or list(days) != sorted(set(days)):
        raise SettingsError(name, f"must be days from 1 up, ascending and each once, got {env[name]!r}")
    return days


def _emails(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    addresses = _list(env, name)
    for address in addresses:
        local, at, domain = address.partition("@")
        if not (local and at and domain) or " " in address:
            raise SettingsError(name, f"must be e-mail addresses separated by commas, got {address!r}")
    return tuple(addresses)


def _names(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> frozenset[str]:
    names = _list(env, name)
    for item in names:
        if item not in choices:
            raise SettingsError(name, f"must name rules among {', '.join(choices)}, got {item!r}")
    return frozenset(names)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in choices:
        raise SettingsError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _timezone(env: Mapping[str, str]) -> ZoneInfo:
    name = env.get("JOBDECK_TIMEZONE") or defaults.DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError("JOBDECK_TIMEZONE", f"is not a known time zone: {name!r}") from None


def _directory(env: Mapping[str, str], name: str, default: Path) -> Path:
    return Path(env.get(name) or default).resolve()
