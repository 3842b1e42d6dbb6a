"""Request bodies over the limit get 413 and keyless calls 401, both before the body is read
(api/limits.py): through the app, and on the bare middleware with a receive that counts."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from api.limits import BodyLimitMiddleware
from recommender.settings import Settings
from tests.api.conftest import COORDINATOR, PLATFORM, new_ids, today

MIB = 1 << 20
BIG = b"x" * (20 * MIB)


@pytest.mark.parametrize("headers", [PLATFORM, {}, {"X-API-Key": "not-a-key"}],
                         ids=["key", "no-key", "bad-key"])
def test_20_mib_body_is_413_with_or_without_a_key(client, headers):
    started = time.perf_counter()
    r = client.post("/v1/events", content=BIG,
                    headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "too_large" and body["detail"][0]["field"] == "body"
    assert str(Settings().max_body_bytes) in body["detail"][0]["reason"]
    assert time.perf_counter() - started < 5  # refused on its header, not parsed


def test_chunked_body_over_the_limit_is_413(client):
    def chunks():
        for _ in range(40):  # 2.5 MiB in 64 KiB chunks, no Content-Length
            yield b"x" * (64 * 1024)

    r = client.post("/v1/events", content=chunks(),
                    headers={**PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_chunked_body_within_the_limit_is_served(client, tables):
    event = {"event_id": new_ids("E-chunked", 1)[0],
             "resident_id": tables["residents"]["resident_id"].iloc[30],
             "course_id": tables["courses"]["course_id"].iloc[0], "event": "view",
             "occurred_at": f"{today().isoformat()}T09:00:00"}
    payload = json.dumps({"events": [event]}).encode()
    r = client.post("/v1/events", content=iter([payload[:10], payload[10:]]),
                    headers={**PLATFORM, "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_normal_requests_are_unchanged(client, tables):
    events = [{"event_id": e, "resident_id": tables["residents"]["resident_id"].iloc[31],
               "course_id": tables["courses"]["course_id"].iloc[1], "event": "view",
               "occurred_at": f"{today().isoformat()}T09:00:00"}
              for e in new_ids("E-normal", 1000)]  # a full batch fits in the limit
    r = client.post("/v1/events", json={"events": events}, headers=PLATFORM)
    assert r.status_code == 200 and r.json()["accepted"] == 1000, r.text
    assert client.get("/healthz").status_code == 200  # no key needed, as before
    r = client.post("/v1/events", json={"events": events[:1]})
    assert r.status_code == 401 and r.json()["detail"][0]["field"] == "header.X-API-Key"
    # A known key of the wrong role is refused by the route, as before.
    r = client.post("/v1/events", json={"events": events[:1]}, headers=COORDINATOR)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = client.get("/v1/residents/R-never-seen-42/recommendations", headers=PLATFORM)
    assert r.status_code == 200


# -- the bare middleware: what it reads --------------------------------------------------


def _call(headers: dict[str, str], chunks: list[bytes], *, path="/v1/events", max_bytes=1000):
    """Run the middleware over an app that reads the whole body; return (status, body,
    messages received, body the app saw or None)."""
    received, seen = [], {}

    async def receive():
        i = len(received)
        received.append(i)
        if i < len(chunks):
            return {"type": "http.request", "body": chunks[i],
                    "more_body": i < len(chunks) - 1}
        return {"type": "http.disconnect"}

    async def inner(scope, receive, send):
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    app = BodyLimitMiddleware(inner, max_bytes=max_bytes, key_roles={"good": "platform"})
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], sent[1]["body"], len(received), seen.get("body")


def test_declared_length_over_the_limit_is_refused_unread():
    status, body, reads, seen = _call({"content-length": "1001", "x-api-key": "good"},
                                      [b"x" * 1001])
    assert (status, reads, seen) == (413, 0, None)
    assert json.loads(body)["detail"][0]["reason"] == (
        "Content-Length 1001 exceeds the limit of 1000 bytes")


@pytest.mark.parametrize("key", [None, "wrong"])
def test_keyless_call_is_401_before_the_body_is_read(key):
    headers = {"content-length": "10"} | ({"x-api-key": key} if key else {})
    status, body, reads, seen = _call(headers, [b"x" * 10])
    assert (status, reads, seen) == (401, 0, None)
    assert json.loads(body)["error"] == "unauthorized"


def test_streamed_body_stops_at_the_limit():
    status, _, reads, seen = _call({"x-api-key": "good"}, [b"x" * 300] * 100)
    assert (status, seen) == (413, None)
    assert reads == 4  # 1,200 bytes passed the limit of 1,000: the other 96 chunks unread


def test_within_the_limit_the_app_gets_the_whole_body():
    assert _call({"x-api-key": "good"}, [b"ab", b"cd", b""])[::3] == (200, b"abcd")
    assert _call({"content-length": "4", "x-api-key": "good"}, [b"abcd"])[::3] == (200, b"abcd")
    assert _call({}, [b"x"], path="/healthz")[0] == 200  # unprotected: no key needed
    assert _call({"content-length": "nope"}, [b""])[0] == 400


def test_the_limit_is_a_setting(monkeypatch):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from tests.api.conftest import API_KEYS

    monkeypatch.setenv("RECOMMENDER_MAX_BODY_BYTES", "100")
    settings = Settings(api_keys=API_KEYS)
    assert settings.max_body_bytes == 100
    assert settings.variables()["RECOMMENDER_MAX_BODY_BYTES"] == "100"  # reaches the workers
    # Refused by the middleware, before any route (the lifespan is not even entered).
    r = TestClient(create_app(settings)).post("/v1/events", content=b"x" * 101,
                                              headers=PLATFORM)
    assert r.status_code == 413 and "limit of 100 bytes" in r.json()["detail"][0]["reason"]
    monkeypatch.setenv("RECOMMENDER_MAX_BODY_BYTES", "0")
    with pytest.raises(ValueError, match="max_body_bytes"):
        Settings(api_keys=API_KEYS)
