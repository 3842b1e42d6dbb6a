"""The errors the serving layer raises; each carries the HTTP status the API answers with."""

from __future__ import annotations


class ServiceError(Exception):
    """A request the service cannot answer; ``status`` is the HTTP status the API returns."""

    status = 400
    code = "bad_request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidInput(ServiceError):
    status, code = 422, "invalid_request"


class NotFound(ServiceError):
    status, code = 404, "not_found"


class NotReady(ServiceError):
    status, code = 503, "not_ready"


__all__ = ["InvalidInput", "NotFound", "NotReady", "ServiceError"]
