"""Request-body limit and early key check, as pure ASGI middleware (no ``BaseHTTPMiddleware``).

FastAPI reads and parses a whole body before the route's dependencies (the key check among
them) run, so without this a client could make the server read and parse megabytes it then
refuses. :class:`BodyLimitMiddleware` answers, in this order and before reading one byte of
the body:

1. ``413 too_large`` when ``Content-Length`` exceeds ``max_bytes``, with a key or without;
2. ``401 unauthorized`` when a ``/v1/`` route (all of them need a key) is called without a
   configured ``X-API-Key`` (the role is still checked by the route: a known key of the wrong
   role gets its 403 there, after a body that is within the limit);
3. a body without ``Content-Length`` (chunked) is counted while it streams and refused with
   ``413`` as soon as it passes ``max_bytes``; the rest is never read.

Answers use the API's error body ``{"error", "detail": [{"field", "reason"}]}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

from api.deps import role_of
from api.errors import error_body

Scope = dict
Message = dict
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Routes under this prefix all need a key; health, metrics and the docs do not.
PROTECTED_PREFIX = "/v1/"


class BodyTooLarge(Exception):
    """The streamed body passed the limit."""


class BodyLimitMiddleware:
    """Refuse oversized bodies (413) and keyless calls (401) before the body is read.

    Parameters
    ----------
    app : ASGI app
        The next app.
    max_bytes : int
        The largest body accepted, in bytes.
    key_roles : mapping of str to str
        ``{key: role}`` of the configured keys; empty (an insecure development server) skips
        the key check.
    """

    def __init__(self, app, max_bytes: int, key_roles: Mapping[str, str]) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.key_roles = dict(key_roles)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                await _refuse(send, 400, "bad_request", "header.Content-Length",
                              f"Content-Length {length[:40]!r} is not a byte count")
                return
            if int(length) > self.max_bytes:
                await self._too_large(send, f"Content-Length {int(length)}")
                return
        if not self._key_ok(scope["path"], headers.get("x-api-key")):
            reason = "missing API key" if not headers.get("x-api-key") else "unknown API key"
            await _refuse(send, 401, "unauthorized", "header.X-API-Key", reason)
            return
        if length is not None:
            # The server holds the body to its declared length, already within the limit.
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read_limited(receive)
        except BodyTooLarge:
            await self._too_large(send, "the streamed body")
            return
        await self.app(scope, _replay(body, receive), send)

    def _key_ok(self, path: str, key: str | None) -> bool:
        if not self.key_roles or not path.startswith(PROTECTED_PREFIX):
            return True
        return bool(key) and role_of(key, self.key_roles) is not None

    async def _read_limited(self, receive: Receive) -> list[Message]:
        """The body's messages, counted as they arrive; :class:`BodyTooLarge` past the limit
        (the rest is left unread)."""
        messages, total = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # a disconnect: the app sees it as it would have
            total += len(message.get("body", b""))
            if total > self.max_bytes:
                raise BodyTooLarge
            if not message.get("more_body", False):
                return messages

    async def _too_large(self, send: Send, what: str) -> None:
        await _refuse(send, 413, "too_large", "body",
                      f"{what} exceeds the limit of {self.max_bytes} bytes")


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (the last of repeated ones)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers", [])}


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever ``receive`` gives."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _refuse(send: Send, status: int, code: str, field: str, reason: str) -> None:
    """Send the API's error body; ``Connection: close`` since the body was not read."""
    body = json.dumps(error_body(code, field, reason)).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["PROTECTED_PREFIX", "BodyLimitMiddleware"]
