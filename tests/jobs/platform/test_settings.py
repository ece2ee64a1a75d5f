"""Settings are read once from the environment and a bad value names its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.platform.errors import SettingsError
from jobs.platform.settings import load_settings


def test_defaults_follow_the_original_configuration(tmp_path: Path) -> None:
    settings = load_settings({"JOBDECK_VAR_DIR": str(tmp_path)}, dotenv=False)

    assert settings.timezone.key == "Asia/Shanghai"
    assert (settings.soft_time_limit, settings.time_limit) == (25 * 60, 30 * 60)
    assert (settings.max_retries, settings.retry_delay) == (3, 30)
    assert settings.queues == ("finance", "reports", "email", "default")
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.results_redis_url == "redis://127.0.0.1:6379/0"
    assert settings.database_url == f"sqlite:///{tmp_path / 'jobdeck.sqlite3'}"
    assert settings.export_dir == tmp_path / "exports"


def test_results_default_to_the_broker_database() -> None:
    # There a result rides on its message's acknowledgement (monitoring/acks.py).
    settings = load_settings({"REDIS_URL": "redis://:secret@cache.internal:6380/4"}, dotenv=False)

    assert settings.results_redis_url == "redis://:secret@cache.internal:6380/4"


def test_embedded_redis_url_file_is_used_when_redis_url_is_unset(tmp_path: Path) -> None:
    (tmp_path / "redis.url").write_text("redis://127.0.0.1:7777/0\n")

    settings = load_settings({"JOBDECK_VAR_DIR": str(tmp_path)}, dotenv=False)

    assert settings.redis_url == "redis://127.0.0.1:7777/0"
    assert not settings.redis_url_explicit


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("JOBDECK_MAX_RETRIES", "three", "JOBDECK_MAX_RETRIES must be a whole number"),
        ("JOBDECK_MAX_RETRIES", "-1", "JOBDECK_MAX_RETRIES must be at least 0"),
        ("JOBDECK_RETRY_DELAY", "soon", "JOBDECK_RETRY_DELAY must be a number"),
        ("JOBDECK_TIME_LIMIT", "0", "JOBDECK_TIME_LIMIT must be greater than 0"),
        ("JOBDECK_TIMEZONE", "Mars/Olympus", "JOBDECK_TIMEZONE is not a known time zone"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL must be a URL"),
        ("PORT", "http", "PORT must be a whole number"),
    ],
)
def test_a_bad_value_names_its_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value}, dotenv=False)

    assert str(raised.value).startswith(expected)
    assert raised.value.variable == variable


def test_soft_limit_must_be_below_hard_limit() -> None:
    with pytest.raises(SettingsError, match="JOBDECK_SOFT_TIME_LIMIT must be below JOBDECK_TIME_LIMIT"):
        load_settings({"JOBDECK_SOFT_TIME_LIMIT": "60", "JOBDECK_TIME_LIMIT": "30"}, dotenv=False)


def test_dotenv_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("# local\nJOBDECK_TIMEZONE=UTC\nexport JOBDECK_MAX_RETRIES='5'\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JOBDECK_MAX_RETRIES", "7")

    settings = load_settings()

    assert settings.timezone.key == "UTC"
    assert settings.max_retries == 7


def test_overdue_reminder_days_default_and_override() -> None:
    assert load_settings({}, dotenv=False).overdue_reminder_days == (1, 7, 14, 30)
    assert load_settings(
        {"JOBDECK_OVERDUE_REMINDER_DAYS": "1, 3,10"}, dotenv=False
    ).overdue_reminder_days == (
        1,
        3,
        10,
    )


@pytest.mark.parametrize("value", ["0,7", "7,1", "1,1", "one", "1,x"])
def test_bad_overdue_reminder_days_name_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="JOBDECK_OVERDUE_REMINDER_DAYS"):
        load_settings({"JOBDECK_OVERDUE_REMINDER_DAYS": value}, dotenv=False)


def test_workers_serve_dramatiqs_per_process_metrics_only_when_asked(tmp_path: Path) -> None:
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware.prometheus import Prometheus

    from jobs.runtime import middleware

    def has_prometheus(environ: dict[str, str]) -> bool:
        settings = load_settings({"JOBDECK_VAR_DIR": str(tmp_path), **environ}, dotenv=False)
        broker = RedisBroker(url="redis://127.0.0.1:1/0", middleware=[])  # builds, connects to nothing
        return any(isinstance(each, Prometheus) for each in middleware(settings, broker))

    assert not has_prometheus({})
    assert has_prometheus({"JOBDECK_WORKER_PROMETHEUS": "on"})
    with pytest.raises(SettingsError, match="JOBDECK_WORKER_PROMETHEUS"):
        load_settings({"JOBDECK_WORKER_PROMETHEUS": "yes please"}, dotenv=False)
