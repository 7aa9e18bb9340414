"""Errors as JSON, and the one place that maps domain errors to HTTP statuses.

Every error answer is `{"error": {"code", "message", "details"}}`. Handlers raise `ApiError`
or let a `DomainError` through; the middleware turns both (and aiohttp's own 404, 405 and
413) into that shape. Anything else is a bug: logged, and answered 500 without internals.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from stratexec.domain.errors import (
    DomainError,
    InvalidStrategy,
    InvalidTransition,
    NotFound,
    UnknownTask,
)
from stratexec.domain.idempotency import IdempotencyKeyReused

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DOMAIN_STATUS: dict[type[DomainError], int] = {
    InvalidStrategy: 422,  # DependencyCycle too: it is an InvalidStrategy
    IdempotencyKeyReused: 422,
    InvalidTransition: 409,
    NotFound: 404,
    UnknownTask: 404,
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


def bad_request(path: str, message: str) -> ApiError:
    """400 naming where the input was wrong (`body.items[2].title`, `query.limit`, ...)."""
    return bad_input([{"path": path, "message": message}])


def bad_input(problems: list[dict[str, str]]) -> ApiError:
    """400 listing every problem (`{"path", "message"}`); the message sums up the first five."""
    summary = "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return ApiError(400, "bad_request", summary + more, {"problems": problems})


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_body(code: str, message: str, details: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status: int, code: str, message: str,
                   details: dict[str, Any] | None = None) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response(error_body(code, message, details), status=status,
                             headers=headers)


def domain_status(error: DomainError) -> int:
    for kind in type(error).__mro__:
        if kind in DOMAIN_STATUS:
            return DOMAIN_STATUS[kind]
    return 400


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.code, error.message, error.details)
    except DomainError as error:
        return error_response(domain_status(error), error.code, error.message, error.details)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        code = _HTTP_CODES.get(error.status, "http_error")
        message = {404: f"no route for {request.method} {request.path}",
                   405: f"{request.method} is not allowed on {request.path}",
                   413: error.text or "the body is too large"}.get(error.status, error.reason)
        answer = error_response(error.status, code, message)
        if "Allow" in error.headers:  # a 405 says which methods the resource takes
            answer.headers["Allow"] = error.headers["Allow"]
        return answer
    except Exception:
        logger.exception("unexpected error answering %s %s", request.method, request.path)
        return error_response(500, "internal", "unexpected error; it has been logged")
