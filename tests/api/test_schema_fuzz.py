"""Schemathesis against the app's own OpenAPI schema, with every role's key: no request the
schema admits (nor the invalid ones it derives) may get a 5xx, and every answer must conform
to the schema: a documented status, the documented content type and body.

Every operation gets a bounded number of generated requests per key, derandomized (the same
requests on every run), so both backends finish in about a minute.
"""

from __future__ import annotations

from itertools import product

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import KEYS

# Requests per operation and key: valid ones, and invalid ones derived from the schema.
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_every_answer_conforms_and_none_is_a_server_error(client, app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    tried: dict[str, list[int]] = {role: [] for role in KEYS}
    for role, key in KEYS.items():
        for operation, (mode, examples) in product(operations, EXAMPLES.items()):
            if mode == GenerationMode.NEGATIVE and not _has_input(operation):
                continue  # nothing to make invalid
            tried[role] += fuzz(operation, mode, examples, key)
    for role, statuses in tried.items():
        assert len(statuses) >= 3 * len(operations), role
        assert any(200 <= s < 300 for s in statuses), role  # the key got through somewhere


def _has_input(operation) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))


def fuzz(operation, mode: GenerationMode, examples: int, key: str) -> list[int]:
    """Send ``examples`` generated requests to ``operation`` with ``key``, checking each
    answer; the statuses received."""
    statuses = []

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)
        statuses.append(response.status_code)
        if response.status_code >= 400 and case.formatted_path != "/metrics":
            body = response.json()
            assert body["error"] and body["detail"][0]["field"]
            assert body["detail"][0]["reason"]

    check()
    return statuses
