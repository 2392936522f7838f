"""Errors the HTTP API turns into RFC 7807 problem+json answers, in one place."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://aml-dsr.invalid/problems/"


class ProblemError(Exception):
    status = 500
    kind = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
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


class ForbiddenError(ProblemError):
    status, kind, title = 403, "forbidden", "Not allowed"


class NotFoundError(ProblemError):
    status, kind, title = 404, "not-found", "No such request"


class ConflictError(ProblemError):
    status, kind, title = 409, "conflict", "The request conflicts with the current state"
