"""The ``jobdeck`` command run through click's runner on the test's runtime, and the API beside it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from api.cli import main

#: SGR codes that set a foreground colour (what NO_COLOR and a pipe must not show).
COLOUR_CODE = r"\x1b\[(?:\d+;)*(?:3[0-7]|9[0-7]|38;[25])[;m]"


@pytest.fixture
def jobdeck(runtime, database, environment) -> Callable[..., Result]:
    """``jobdeck(*arguments, input=None)``: run a command in this process, on this test's runtime.

    The test's environment is the process's for the call (commands that read only the settings).

    Fails the test on any exception but the exit a command chooses: a user never sees a traceback.
    """
    runner = CliRunner()

    def invoke(*arguments: str, input: str | None = None) -> Result:
        result = runner.invoke(main, list(arguments), obj=runtime, input=input, env=environment)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"jobdeck {' '.join(arguments)} raised") from result.exception
        return result

    return invoke


@pytest.fixture
def api(client, tokens) -> Callable[..., dict]:
    """``api(path, status=200)``: the API's JSON answer to GET ``path`` with an admin token."""

    def get(path: str, status: int = 200) -> dict:
        response = client.get(path, headers=tokens.admin)
        assert response.status_code == status, response.get_json()
        return response.get_json()

    return get


def assert_red_line(result: Result, expected: str, status: int) -> None:
    """Exit ``status`` with one line on standard error, ``Error: ...`` holding ``expected``."""
    assert result.exit_code == status, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.output
