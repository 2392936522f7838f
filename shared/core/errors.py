"""Errors the HTTP API turns into RFC 7807 problem+json answers, in one place."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://aml-dsr.invalid/problems/"


class ProblemError(Exception):
    status = 500
    kind = "internal-error"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequestError(ProblemError):
    status, kind, title = 400, "bad-request", "The request is not valid"


class ValidationFailedError(ProblemError):
    status, kind, title = 422, "validation-failed", "The request body does not validate"


class UnsupportedMediaTypeError(ProblemError):
    status, kind, title = 415, "unsupported-media-type", "Content-Type must be application/json"


class PayloadTooLargeError(ProblemError):
    status, kind, title = 413, "payload-too-large", "The request body is too large"


class UnauthorizedError(ProblemError):
    """No valid credential. RFC 6750: the answer names the scheme in WWW-Authenticate."""

    status, kind, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, *, error_code: str | None = None) -> None:
        challenge = 'Bearer realm="aml-dsr"'
        if error_code:
            description = detail.replace('"', "'")[:200]
            challenge += f', error="{error_code}", error_description="{description}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class ForbiddenError(ProblemError):
    status, kind, title = 403, "forbidden", "Not allowed"


class NotFoundError(ProblemError):
    status, kind, title = 404, "not-found", "No such request"


class ConflictError(ProblemError):
    status, kind, title = 409, "conflict", "The request conflicts with the current state"


class GoneError(ProblemError):
    status, kind, title = 410, "gone", "No longer available"


class ServiceUnavailableError(ProblemError):
    status, kind, title = 503, "service-unavailable", "A service this call depends on did not answer"

    def __init__(self, detail: str, retry_after: int = 30) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
