"""Errors of the HTTP API and their one JSON shape, mapped in one place.

    ApiError    any refusal the API answers itself: status, code, message;
                api.paywall builds its 402s (PAYMENT_REQUIRED with a challenge,
                or the protocol's reason code for a refused payment)

Foreign errors are mapped here too: request validation (400 naming the field),
routing refusals (404 and 405), the store's conflicts (409), lost dependencies
(503 with retry_after), and anything unexpected (500, logged, in the same shape).
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from temporalio.service import RPCError

from store.errors import ConflictError, NotFound, StoreUnavailable

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
ROUTING_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


class ApiError(Exception):
    """An answer other than success: status, machine-readable code, message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}
        self.extra = extra or {}


def unavailable(what: str, retry_after: int = RETRY_AFTER_SECONDS) -> ApiError:
    """503 for a dependency that cannot be reached: retry later, never a guess."""
    return ApiError(
        503,
        "SERVICE_UNAVAILABLE",
        f"{what} is unreachable; retry later",
        details={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def error_body(request: Request, error: ApiError) -> dict[str, Any]:
    """The one error shape: error, code, details, request_id (and extras)."""
    return {
        "error": error.message,
        "code": error.code,
        "details": error.details,
        "request_id": getattr(request.state, "request_id", None),
        **error.extra,
    }


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the routes let out to its status and body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return _respond(request, error)

    @app.exception_handler(HTTPException)
    async def _routing(request: Request, error: HTTPException) -> JSONResponse:
        # Starlette's own refusals (no such path, wrong method) get the shape too.
        status = error.status_code
        code = ROUTING_CODES.get(status, f"HTTP_{status}")
        headers = dict(error.headers or {})
        return _respond(request, ApiError(status, code, error.detail, headers=headers))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = [_describe(item) for item in error.errors()]
        fields = [problem["field"] for problem in problems]
        message = "invalid request: " + "; ".join(
            f"{p['field']}: {p['message']}" for p in problems
        )
        return _respond(
            request,
            ApiError(
                400,
                "INVALID_REQUEST",
                message,
                details={"fields": fields, "problems": problems},
            ),
        )

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, error: StoreUnavailable) -> JSONResponse:
        logger.warning("postgres unavailable path=%s error=%s", request.url.path, error)
        return _respond(request, unavailable("Postgres"))

    @app.exception_handler(RPCError)
    async def _temporal_down(request: Request, error: RPCError) -> JSONResponse:
        logger.warning("temporal rpc failed path=%s error=%s", request.url.path, error)
        return _respond(request, unavailable("Temporal"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # A lazy Temporal client that cannot connect raises a bare RuntimeError.
        if isinstance(error, RuntimeError) and "Failed client connect" in str(error):
            logger.warning("temporal unreachable path=%s", request.url.path)
            return _respond(request, unavailable("Temporal"))
        logger.exception("unexpected error path=%s", request.url.path)
        return _respond(
            request, ApiError(500, "INTERNAL", "unexpected error; it was logged")
        )

    @app.exception_handler(ConflictError)
    async def _conflict(request: Request, error: ConflictError) -> JSONResponse:
        code = error.reason or "CONFLICT"
        return _respond(request, ApiError(409, str(code), str(error)))

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, error: NotFound) -> JSONResponse:
        return _respond(request, ApiError(404, "NOT_FOUND", str(error)))


def _respond(request: Request, error: ApiError) -> JSONResponse:
    if error.status >= 500:
        logger.error("request failed code=%s path=%s", error.code, request.url.path)
    return JSONResponse(
        error_body(request, error), status_code=error.status, headers=error.headers
    )


def _describe(item: dict[str, Any]) -> dict[str, str]:
    # A body that is not JSON is located by a character offset: it is the body.
    if item.get("type") == "json_invalid":
        return {"field": "body", "message": str(item.get("msg"))}
    # "body.params.amount" names the field; the leading "body" says nothing.
    location = [str(part) for part in item.get("loc", ()) if part != "body"]
    return {"field": ".".join(location) or "body", "message": str(item.get("msg"))}
