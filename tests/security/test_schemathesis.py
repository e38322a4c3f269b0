"""schemathesis over the API's OpenAPI schema, in-process: anonymous and with a read-write token.

Every generated request must get an answer that is not a server error and that matches the schema:
a documented status code, content type, headers and body. The throttles stay on (as deployed), so a
429 must be documented too. Bounded by ``MAX_EXAMPLES`` per operation so the run stays short.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import World

pytestmark = pytest.mark.db

WORLD_SETTINGS: dict[str, Any] = {}  # the deployed defaults, throttles included
MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


def test_api_conforms_to_its_schema(world: World) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", world.client.app)
    token = {"Authorization": f"Bearer {world.tokens['token_write_owner']}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def run(case: schemathesis.Case) -> None:
            # Anonymous first, then as the owner with a read-write token (which may change or delete).
            for headers in ({}, token):
                try:
                    case.call_and_validate(checks=CHECKS, headers=headers)
                except Exception as exc:  # name the input: a crash inside the app says nothing of it
                    who = "with a token" if headers else "anonymous"
                    raise AssertionError(
                        f"{who}, path {case.path_parameters}, query {case.query}, body {str(case.body)[:200]}: "
                        f"{type(exc).__name__}: {str(exc).strip()[:1200]}") from exc

        try:
            run()
        except Exception as exc:  # one report per operation: the first failure hypothesis found
            failures.append(f"{operation.label}: {str(exc).strip()[:1500]}")
    assert not failures, "\n\n".join(failures)
