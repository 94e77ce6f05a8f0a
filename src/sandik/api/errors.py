"""Every error the API returns has one JSON shape:

    {"error": {"code": "not_found", "message": "unknown race 'x' in election y", ...context}}

``code`` is machine-readable and stable; ``message`` is a sentence for people.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandik.auth.tokens import AuthError
from sandik.errors import FormatError, ModelError, NotFound, SandikError, SchemaVersionError, SheetRejected, StoreError


class ApiError(SandikError):
    """An error raised by the API layer itself, with its HTTP status."""

    def __init__(self, status: int, code: str, message: str, **context: Any) -> None:
        super().__init__(message, **context)
        self.status = status
        self.code = code


def status_of(exc: SandikError) -> int:
    if isinstance(exc, (ApiError, AuthError)):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, FormatError):
        return 400
    if isinstance(exc, SheetRejected):
        return 422
    if isinstance(exc, (SchemaVersionError, ModelError)):
        return 500
    if isinstance(exc, StoreError):
        return 503
    return 400


def error_body(code: str, message: str, **context: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **{k: v for k, v in context.items() if v is not None}}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None, **context: Any) -> JSONResponse:
    return JSONResponse(error_body(code, message, **context), status_code=status, headers=headers)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "body_too_large", 415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests"}


def install(app: FastAPI) -> None:
    @app.exception_handler(SandikError)
    async def _sandik(_req: Request, exc: SandikError) -> JSONResponse:
        status = status_of(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"error": exc.to_dict()}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [{"where": ".".join(str(x) for x in e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()]
        text = "; ".join(f"{p['where']}: {p['message']}" for p in problems)
        return error_response(422, "invalid_request", f"invalid request: {text}", problems=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        msg = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and msg == "Not Found":
            msg = "no such endpoint (see /docs for the API)"
        return error_response(exc.status_code, code, msg, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")
