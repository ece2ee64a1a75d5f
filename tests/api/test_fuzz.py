"""schemathesis against the app's own OpenAPI document, with an admin token: every operation gets
valid and invalid requests; none may answer 5xx, and every answer must conform to the document."""

from __future__ import annotations

import collections

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

#: Requests per operation and generation mode: 28 operations x 2 modes x 30, less those with nothing to
#: get wrong, is over 1,000 (checked below).
EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def test_no_generated_request_gets_a_5xx_and_every_answer_conforms(runtime, settings, database, tokens):
    from api import create_app

    # Generous limits: the fuzzing itself must not be rate-limited into a wall of 429s.
    runtime.settings = settings.with_overrides(api_read_rate="100000/minute", api_write_rate="100000/minute")
    app = create_app({"RUNTIME": runtime, "TESTING": True})
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        _fuzz(operation, GenerationMode.POSITIVE, tokens.admin, statuses)
        try:
            _fuzz(operation, GenerationMode.NEGATIVE, tokens.admin, statuses)
        except Unsatisfiable:
            # An operation without parameters or body has nothing to get wrong.
            assert not operation.path_parameters and not operation.query and not list(operation.body)

    print(f"{len(statuses)} requests:", dict(sorted(collections.Counter(statuses).items())))
    assert len(statuses) >= 1000
    assert not [status for status in statuses if status >= 500]
    assert any(200 <= status < 300 for status in statuses)


def _fuzz(operation, mode, headers, statuses: list[int]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
