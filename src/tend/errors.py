"""One error hierarchy, rendered by one set of handlers as ``{"error": Name, "detail": ...}``."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("tend.errors")

REQUEST_ID_HEADER = "X-Request-ID"


class ErrorBody(BaseModel):
    """The JSON body of every error response."""

    error: str
    detail: Any = None
    request_id: str | None = None


class TendError(Exception):
    """Base of every error tend reports to a client.

    Subclasses set ``status_code``; the class name is the ``error`` field clients see.
    """

    status_code: ClassVar[int] = 500

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        """Create the error.

        Args:
            detail: A human-readable message or a JSON-able structure.
            headers: Extra response headers (e.g. ``Retry-After``).
        """
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(TendError):
    """The request is malformed in a way validation could not name."""

    status_code = 400


class Unauthorized(TendError):
    """Missing, invalid, expired or revoked credentials, or a disabled user."""

    status_code = 401

    def __init__(self, detail: Any = "not authenticated") -> None:
        """Create the error with the ``WWW-Authenticate`` header RFC 6750 asks for."""
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(TendError):
    """Authenticated, but the role does not allow this."""

    status_code = 403


class NotFound(TendError):
    """The named resource does not exist."""

    status_code = 404


class Conflict(TendError):
    """The request conflicts with the current state (duplicate name, last admin, ...)."""

    status_code = 409


class PayloadTooLarge(TendError):
    """The request body is over the configured cap."""

    status_code = 413


class ValidationFailed(TendError):
    """Input passed schema validation but breaks a rule the service enforces."""

    status_code = 422


class RateLimited(TendError):
    """Too many attempts; ``Retry-After`` says when to try again."""

    status_code = 429

    def __init__(self, detail: Any, *, retry_after: int) -> None:
        """Create the error.

        Args:
            detail: What was limited.
            retry_after: Seconds until the next attempt is allowed.
        """
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class ServiceUnavailable(TendError):
    """A dependency (database, broker, model provider) is unavailable."""

    status_code = 503


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return value if isinstance(value, str) else None


def error_response(
    request: Request,
    status_code: int,
    name: str,
    detail: Any,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render an error in tend's one error shape.

    Args:
        request: The request that failed.
        status_code: HTTP status.
        name: The error name clients match on.
        detail: Message or structure explaining the error.
        headers: Extra headers.

    Returns:
        The JSON response.
    """
    request_id = _request_id(request)
    body = ErrorBody(error=name, detail=jsonable_encoder(detail), request_id=request_id)
    all_headers = dict(headers or {})
    if request_id:
        # Unhandled errors are answered outside the request-id middleware; name the id here too.
        all_headers.setdefault(REQUEST_ID_HEADER, request_id)
    return JSONResponse(body.model_dump(), status_code=status_code, headers=all_headers)


async def _tend_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TendError)
    return error_response(request, exc.status_code, type(exc).__name__, exc.detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return error_response(request, 422, "ValidationError", detail)


_HTTP_NAMES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    name = _HTTP_NAMES.get(exc.status_code, "HTTPError")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(request, exc.status_code, name, exc.detail, headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error", exc_info=exc)
    return error_response(request, 500, "InternalError", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in one shape.

    Args:
        app: The application.
    """
    app.add_exception_handler(TendError, _tend_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
