"""One error type for the whole service and one renderer: {"error", "detail", "fields"?}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    """A refusal the client can act on. Subclasses name the domain problem."""

    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None  # sent with the answer (Retry-After, say)

    def __init__(self, detail: str, *, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class InvalidField(AppError):
    """A value passed the schema but breaks a rule of the domain (a bad phone number, say)."""

    status_code = 422
    code = "validation_error"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}", fields=[{"field": field, "problem": problem}])


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class TooManyRequests(AppError):
    """Refused until `retry_after` seconds have passed (sent as Retry-After)."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class IllegalTransition(AppError):
    status_code = 409
    code = "illegal_transition"


def error_body(
    code: str, detail: str, fields: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return body


def _field_path(error: dict[str, Any]) -> str:
    """("body", "phones", 0) reads as `phones[0]`; the query/path/header prefix is kept."""
    parts = list(error["loc"])
    if error.get("type") == "json_invalid":
        return "body"  # the body as a whole: its location ends in a byte offset, not a field
    if len(parts) > 1 and parts[0] == "body":
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _problem(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else exc.headers
    return JSONResponse(
        error_body(exc.code, exc.detail, exc.fields), status_code=exc.status_code, headers=headers
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [{"field": _field_path(e), "problem": _problem(e)} for e in exc.errors()]
    detail = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    return JSONResponse(error_body("validation_error", detail, fields), status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
