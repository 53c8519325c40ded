"""The contract's JSON error shape, for every path.

`GatewayError` is the one exception type the code raises for a client-visible
failure; the renderers here turn it (and DRF's or Django's own exceptions) into
`{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf

logger = logging.getLogger("gateway.errors")

# code -> (HTTP status, error type). Types follow OpenAI's and Anthropic's
# names so both SDKs map them to their own exception classes.
ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "invalid_api_key": (401, "authentication_error"),
    "quota_exceeded": (403, "insufficient_quota"),
    "model_not_allowed": (403, "permission_error"),
    "insufficient_permissions": (403, "permission_error"),
    "model_not_found": (404, "not_found_error"),
    "not_found": (404, "not_found_error"),
    "method_not_allowed": (405, "invalid_request_error"),
    "conflict": (409, "invalid_request_error"),
    "request_too_large": (413, "request_too_large"),
    "unsupported_media_type": (415, "invalid_request_error"),
    "rate_limited": (429, "rate_limit_error"),
    "internal_error": (500, "api_error"),
    "upstream_error": (502, "api_error"),
    "provider_unavailable": (503, "api_error"),
    "upstream_timeout": (504, "api_error"),
}

INVALID_KEY_MESSAGE = "Invalid or missing API key."


class GatewayError(Exception):
    """A failure the client is told about, with the contract's code."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict | None = None,
    ) -> None:
        super().__init__(message)
        default_status, default_type = ERRORS[code]
        self.code = code
        self.message = message
        self.param = param
        self.status = status or default_status
        self.type = error_type or default_type
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, anthropic: bool = False) -> dict:
        """The JSON error; Anthropic's clients also expect a top-level `"type": "error"`."""
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        error.update(self.extra)
        return {"type": "error", "error": error} if anthropic else {"error": error}


def invalid_api_key() -> GatewayError:
    # One message for missing, unknown, revoked, expired and disabled: the
    # response must not tell an attacker which check failed.
    return GatewayError("invalid_api_key", INVALID_KEY_MESSAGE)


def error_json_bytes(err: GatewayError, anthropic: bool = False) -> bytes:
    return json.dumps(err.body(anthropic), separators=(",", ":")).encode()


def error_response(err: GatewayError) -> JsonResponse:
    response = JsonResponse(err.body(), status=err.status)
    for name, value in err.headers.items():
        response[name] = value
    return response


def internal_error() -> GatewayError:
    return GatewayError("internal_error", "The server had an error while processing your request.")


def _validation_message(detail) -> tuple[str, str | None]:
    """First message of a DRF ValidationError detail, and the field it is about."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            message, _ = _validation_message(value)
            param = None if field == "non_field_errors" else str(field)
            return (f"{param}: {message}" if param else message), param
        return "Invalid request.", None
    if isinstance(detail, list):
        return _validation_message(detail[0]) if detail else ("Invalid request.", None)
    return str(detail), None


def from_exception(exc: Exception) -> GatewayError | None:
    """Map a known exception (ours, DRF's, Django's) to a GatewayError; None if unknown."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        err = invalid_api_key()
        err.headers["WWW-Authenticate"] = "Bearer"
        return err
    if isinstance(exc, (drf.PermissionDenied, DjangoPermissionDenied)):
        return GatewayError("insufficient_permissions", "You do not have permission to perform this action.")
    if isinstance(exc, (drf.NotFound, Http404)):
        return GatewayError("not_found", "Not found.")
    if isinstance(exc, drf.MethodNotAllowed):
        return GatewayError("method_not_allowed", str(exc.detail))
    if isinstance(exc, drf.ValidationError):
        message, param = _validation_message(exc.detail)
        return GatewayError("invalid_request", message, param=param)
    if isinstance(exc, drf.ParseError):
        return GatewayError("invalid_request", f"Malformed request body: {exc.detail}")
    if isinstance(exc, drf.UnsupportedMediaType):
        return GatewayError("unsupported_media_type", str(exc.detail))
    if isinstance(exc, drf.Throttled):
        wait = int(exc.wait or 1)
        return GatewayError(
            "rate_limited", "Rate limit exceeded.", headers={"Retry-After": str(wait)}, extra={"retry_after": wait}
        )
    if isinstance(exc, RequestDataTooBig):
        return GatewayError("request_too_large", "Request body is too large.")
    if isinstance(exc, SuspiciousOperation):
        return GatewayError("invalid_request", "Bad request.")
    return None


def drf_exception_handler(exc: Exception, context: dict) -> JsonResponse:
    err = from_exception(exc)
    if err is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        err = internal_error()
    return error_response(err)
