"""Schemathesis against the app's own OpenAPI schema: no request the schema admits may 500.

Every operation gets a bounded number of generated requests (positive and negative cases), sent
with the platform key, so both backends finish in seconds.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import PLATFORM

EXAMPLES = 15


def test_no_request_the_schema_admits_gives_a_server_error(client, app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    tried = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            # The platform key reaches every platform handler (admin routes answer it 403).
            response = case.call(headers=PLATFORM)
            tried.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path,
                                                 response.text[:500])
            if response.status_code >= 400 and case.formatted_path != "/metrics":
                body = response.json()
                assert body["error"] and body["detail"][0]["field"]
                assert body["detail"][0]["reason"]

        check()
    assert len(tried) >= 5 * len(operations)
