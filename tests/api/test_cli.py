"""The jobdeck command line, run as a user runs it: in its own process."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_jobdeck


def assert_one_red_line(result, expected: str, status: int = 2) -> None:
    """One line on standard error starting ``Error:`` and holding ``expected``; exit ``status``."""
    assert result.returncode == status, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert expected in lines[0]


@pytest.mark.slow
def test_send_waits_and_prints_the_result_as_json(environment, start_worker):
    start_worker()

    result = run_jobdeck(environment, "send", "test_task", "--args", '["hello"]', "--wait", "--json")

    assert result.returncode == 0, result.stderr
    task = json.loads(result.stdout)
    assert task["task_name"] == "test_task"
    assert task["status"] == "SUCCESS"
    assert task["result"] == {"echo": ["hello"], "kwargs": {}}
    assert len(task["task_id"]) == 36


@pytest.mark.slow
def test_send_reports_a_failed_task_and_exits_non_zero(environment, start_worker):
    start_worker(JOBDECK_MAX_RETRIES="0")

    result = run_jobdeck(environment, "send", "test_task", "--kwargs", '{"fail": true}', "--wait", "--json")

    assert result.returncode == 1
    task = json.loads(result.stdout)
    assert task["status"] == "FAILURE"
    assert task["error"].startswith("DiagnosticFailure")


def test_send_without_wait_prints_the_pending_task(environment):
    result = run_jobdeck(environment, "send", "test_task", "--args", "[1, 2]")

    assert result.returncode == 0, result.stderr
    assert "test_task" in result.stdout
    assert "PENDING" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["send", "no_such_job"], "no job is called 'no_such_job'; the jobs are:"),
        (["send", "test_task", "--args", "[1,"], "args is not valid JSON"),
        (["send", "test_task", "--args", '{"a": 1}'], "args must be a JSON array"),
        (["send", "test_task", "--kwargs", "[1]"], "kwargs must be a JSON object"),
        (
            ["send", "long_running_task", "--kwargs", '{"hours": 2}'],
            "long_running_task cannot take these arguments",
        ),
        (["send", "test_task", "--delay", "-5"], "delay must not be negative"),
    ],
)
def test_bad_input_is_one_red_line(environment, arguments, expected):
    assert_one_red_line(run_jobdeck(environment, *arguments), expected)


def test_unreachable_redis_is_one_red_line_naming_the_url_without_the_password(environment):
    environment = {**environment, "REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}

    result = run_jobdeck(environment, "send", "test_task")

    assert_one_red_line(result, "Redis at redis://:***@127.0.0.1:1/0 cannot be reached", status=3)
    assert "s3cret" not in result.stderr


def test_bad_setting_is_one_red_line_naming_the_variable(environment):
    environment = {**environment, "JOBDECK_MAX_RETRIES": "lots"}

    assert_one_red_line(
        run_jobdeck(environment, "send", "test_task"), "JOBDECK_MAX_RETRIES must be a whole number"
    )


def test_unreachable_database_is_one_red_line_without_the_password(environment):
    environment = {**environment, "DATABASE_URL": "postgresql://billing:hunter2@127.0.0.1:1/billing"}

    result = run_jobdeck(environment, "db", "upgrade")

    assert_one_red_line(result, "cannot be reached", status=3)
    assert "hunter2" not in result.stderr


def test_unwritable_var_directory_is_one_red_line(environment, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a directory should be")
    environment = {**environment, "DATABASE_URL": f"sqlite:///{blocked / 'sub' / 'jobdeck.sqlite3'}"}

    assert_one_red_line(
        run_jobdeck(environment, "db", "upgrade"), f"cannot create the directory {blocked}", status=1
    )


def test_db_upgrade_then_seed_then_seed_again_keeps_the_data(environment):
    assert run_jobdeck(environment, "db", "upgrade").returncode == 0
    first = run_jobdeck(environment, "demo", "seed", "--customers", "20", "--bills", "200")
    second = run_jobdeck(environment, "demo", "seed", "--customers", "20", "--bills", "200")

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert json.loads(first.stdout)["bills"] == 200
    assert json.loads(second.stdout).get("skipped") is True
