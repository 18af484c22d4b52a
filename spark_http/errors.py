"""The one place where errors become HTTP answers.

Every error body is ``{"detail": <human message>, "status_code": <int>}``, plus
``"errors": [{"field", "message"}]`` for invalid input. Spark errors carry messages that are safe
to show; anything unexpected becomes a 500 whose body names only a request id, while the log line
carries the traceback under the same id.
"""

import logging
import re
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_405_METHOD_NOT_ALLOWED,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import ExceptionHandlersMap

from spark_core.errors import NotFoundError, SparkError, StoreUnavailableError
from spark_http.observability import request_id as _request_id

logger = logging.getLogger(__name__)

INTERNAL_ERROR = "Internal server error"

_FIELD_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")


def status_for(exc: SparkError) -> int:
    """The status code of a Spark error: unknown ids are 404, a database that cannot be reached
    is 503, every other refusal is a 400.

    Order matters: ``RemoteNotFoundError`` is both a ``SourceError`` and a ``NotFoundError``
    and is a 404 (the remote id names nothing).
    """
    if isinstance(exc, NotFoundError):
        return HTTP_404_NOT_FOUND
    if isinstance(exc, StoreUnavailableError):  # not the request's fault: try again shortly
        return HTTP_503_SERVICE_UNAVAILABLE
    # ValidationError (InvalidScheduleError, UnknownSourceTypeError, SourceValidationError),
    # ConflictError, InvalidStateError, SourceError and any other SparkError: the request
    # cannot be carried out as given.
    return HTTP_400_BAD_REQUEST


def error_response(
    detail: str,
    status_code: int,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[dict[str, Any]]:
    """A JSON error answer in the one shape every error takes."""
    body: dict[str, Any] = {"detail": detail, "status_code": status_code}
    if errors:
        body["errors"] = errors
    return Response(content=body, status_code=status_code, headers=headers)


def field_errors(exc: msgspec.ValidationError, *, default: str = "body") -> list[dict[str, str]]:
    """The field a msgspec validation message points at, as an ``errors`` list."""
    return [{"field": _field_of(str(exc), default), "message": _message_of(str(exc))}]


def _field_of(message: str, default: str) -> str:
    if found := _MISSING_FIELD.search(message) or _UNKNOWN_FIELD.search(message):
        prefix = _FIELD_PATH.search(message)
        if prefix and prefix.group(1):
            return f"{prefix.group(1)}.{found.group(1)}"
        return found.group(1)
    if (found := _FIELD_PATH.search(message)) and found.group(1):
        return found.group(1)
    return default


def _message_of(message: str) -> str:
    return message.split(" - at `", 1)[0]


def handle_spark_error(request: Request[Any, Any, Any], exc: SparkError) -> Response[Any]:
    """A Spark error: its (safe) message, its status, and its field errors if any."""
    errors = [{"field": field, "message": message} for field, message in exc.errors]
    status = status_for(exc)
    headers = {"Retry-After": "1"} if status == HTTP_503_SERVICE_UNAVAILABLE else None
    return error_response(exc.message, status, errors=errors or None, headers=headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals: invalid input (400, never 422), unknown route, wrong method."""
    status = exc.status_code
    if status in (HTTP_404_NOT_FOUND, HTTP_405_METHOD_NOT_ALLOWED):
        # Unknown paths and methods never reach the route middleware; the API key still
        # comes first for protected paths, so probing the API without a key learns nothing.
        auth = getattr(request.app.state, "auth", None)
        if auth is not None and request.method != "OPTIONS" and auth.protects(request.url.path):
            refusal = auth.refusal(request.headers.get(auth.header))
            if refusal is not None:
                return handle_http_exception(request, refusal)
    headers = dict(exc.headers or {})
    if status >= HTTP_500_INTERNAL_SERVER_ERROR:
        return handle_unexpected(request, exc)
    if status == HTTP_400_BAD_REQUEST:
        errors = _validation_errors(exc)
        detail = "Invalid request: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(detail, status, errors=errors, headers=headers)
    if status == HTTP_404_NOT_FOUND:
        detail = f"Not found: {request.method} {request.url.path}"
    elif status == HTTP_405_METHOD_NOT_ALLOWED:
        detail = f"Method {request.method} not allowed on {request.url.path}"
    elif status == HTTP_401_UNAUTHORIZED:
        detail = exc.detail
    else:
        detail = exc.detail or "Request refused"
    return error_response(detail, status, headers=headers)


def _validation_errors(exc: HTTPException) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    extra = exc.extra if isinstance(exc.extra, list) else []
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", "is invalid"))
        field = _field_of(message, "") or str(item.get("key") or item.get("source") or "body")
        errors.append({"field": field, "message": _message_of(message)})
    if not errors:
        errors.append({"field": "body", "message": exc.detail})
    return errors


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unplanned: logged with a request id and traceback; the body reveals nothing."""
    request_id = _request_id(request.scope)
    logger.error(
        "Unexpected error on %s %s (request_id=%s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    response = error_response(
        INTERNAL_ERROR, HTTP_500_INTERNAL_SERVER_ERROR, headers={"X-Request-ID": request_id}
    )
    response.content["request_id"] = request_id
    return response


def exception_handlers() -> ExceptionHandlersMap:
    """The handlers ``create_app`` installs, most specific class first by Litestar's MRO."""
    return {
        SparkError: handle_spark_error,
        HTTPException: handle_http_exception,
        Exception: handle_unexpected,
    }
