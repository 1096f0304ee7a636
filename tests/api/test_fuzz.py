"""Property-based fuzz of the live API from its own OpenAPI schema (schemathesis):
no 500 and every response matches the documented schema, on both backends."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.api.live import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="package")
def api_schema(live_server: LiveServer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")


fuzz = schemathesis.pytest.from_fixture("api_schema")


@fuzz.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_schema_conformance(case: schemathesis.Case, live_server) -> None:
    # The SSE stream never ends and the POST actions would restart workers at random
    # (schema.exclude() is not honoured by from_fixture, so they are skipped here).
    if case.operation.path == "/control/logs/stream" or case.method.upper() == "POST":
        return
    case.call_and_validate(
        headers=live_server.headers(),
        checks=[not_a_server_error, response_schema_conformance],
    )
