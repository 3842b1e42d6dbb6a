"""The examples of the OpenAPI schema succeed when tried, as /docs' "Try it out" sends them:
path parameters from their examples, bodies built from the fields' examples."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.test_access import (  # noqa: F401  (matrix_app: the fixture, used below)
    CALLER_KEYS,
    CALLERS,
    MATRIX,
    matrix_app,
)


def example_of(schema: dict, components: dict):
    """A value built from a JSON schema's examples, the way Swagger UI fills a body."""
    if "$ref" in schema:
        return example_of(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "examples" in schema:
        return schema["examples"][0]
    if "anyOf" in schema:
        return example_of(next(s for s in schema["anyOf"] if s.get("type") != "null"),
                          components)
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "array":
        return [example_of(schema["items"], components)]
    if schema.get("type") == "object" or "properties" in schema:
        fields = {name: example_of(sub, components)
                  for name, sub in schema.get("properties", {}).items()
                  if name in schema.get("required", ()) or _has_example(sub, components)}
        return {name: value for name, value in fields.items() if value is not None}
    return schema.get("default")


def _has_example(schema: dict, components: dict) -> bool:
    if "$ref" in schema:
        return _has_example(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    inner = schema.get("anyOf", []) + ([schema["items"]] if "items" in schema else [])
    return "examples" in schema or any(_has_example(s, components) for s in inner)


def test_every_example_request_succeeds(matrix_app):  # noqa: F811
    schema = matrix_app.openapi()
    components = schema["components"]["schemas"]
    client = TestClient(matrix_app)
    tried = 0
    # A decision must exist before DELETE /v1/decisions/1 is tried: POSTs first.
    for path, item in sorted(schema["paths"].items(),
                             key=lambda p: "delete" in p[1]):
        for method, operation in item.items():
            url = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "example" in parameter, (method, path, parameter["name"])
                    url = url.replace(f"{{{parameter['name']}}}", str(parameter["example"]))
            body = None
            if "requestBody" in operation:
                content = operation["requestBody"]["content"]["application/json"]
                body = example_of(content["schema"], components)
            caller = next(c for c, s in zip(CALLERS, MATRIX[(method.upper(), path)],
                                             strict=True) if s < 300)
            key = CALLER_KEYS[caller]
            response = client.request(method, url, json=body,
                                      headers={} if key is None else {"X-API-Key": key})
            assert response.status_code < 300, (method, url, body, response.text[:300])
            tried += 1
    assert tried >= 17  # every operation of the schema (the docs and the page are not in it)
