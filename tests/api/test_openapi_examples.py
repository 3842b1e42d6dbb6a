"""The examples of the OpenAPI schema succeed when tried, as /docs' "Try it out" sends them:
path parameters from their examples, bodies built from the fields' examples."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from recommender.training import registry
from tests.api.test_access import (  # noqa: F401  (matrix_app: the fixture, used below)
    CALLER_KEYS,
    admitted_caller,
    matrix_app,
    served_version,
)

# Writes first, reads next, deletes last: a decision exists before DELETE /v1/decisions/1, and
# an experiment runs before its status and report are read and before it is stopped.
METHOD_ORDER = {"post": 0, "put": 0, "get": 1, "delete": 2}
# A model version is named by the UTC time it was trained at, so no fixed example can name a
# version of this test's artifacts folder (nor of a demo's, nor of any other registry): the
# examples of these fields show the form, and the test sends in their place the names of the
# folder's two versions (the served one as A), as a user of "Try it out" types the names that
# `recommender models list` shows. Every other field is sent as its example.
VERSION_FIELDS = ("version_a", "version_b")
VERSION_FORM = r"v\d{8}T\d{6}(-\d+)?"


def with_the_folders_versions(body: dict, app) -> dict:
    """``body`` with its version examples (checked to have a version's form) replaced by the
    app's served version and the other one of its artifacts folder."""
    assert all(re.fullmatch(VERSION_FORM, body[field]) for field in VERSION_FIELDS), body
    served = served_version(app)
    names = [v["version"] for v in registry.list_versions(app.state.settings.artifacts_dir)]
    assert all(re.fullmatch(VERSION_FORM, name) for name in names), names
    return {**body, "version_a": served,
            "version_b": next(name for name in names if name != served)}


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
    operations = sorted(((path, method, operation)
                         for path, item in schema["paths"].items()
                         for method, operation in item.items()),
                        key=lambda op: METHOD_ORDER[op[1]])
    for path, method, operation in operations:
        url = path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "example" in parameter, (method, path, parameter["name"])
                url = url.replace(f"{{{parameter['name']}}}", str(parameter["example"]))
        body = None
        if "requestBody" in operation:
            content = operation["requestBody"]["content"]["application/json"]
            body = example_of(content["schema"], components)
            if set(VERSION_FIELDS) <= set(body):
                body = with_the_folders_versions(body, matrix_app)
        key = CALLER_KEYS[admitted_caller((method.upper(), path))]
        response = client.request(method, url, json=body,
                                  headers={} if key is None else {"X-API-Key": key})
        assert response.status_code < 300, (method, url, body, response.text[:300])
    # Every operation of the schema was tried (the docs and the page are not in it).
    assert len(operations) >= 22
