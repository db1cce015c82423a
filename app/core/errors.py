"""One error type for the whole service and one renderer: {"error", "detail", "fields"?}."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.constraints import refusal, violation_of
from app.core.logging import get_logger

log = get_logger(__name__)


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


class FieldProblem(BaseModel):
    field: str = Field(description="Where: `name`, `phones[0]`, `query.offset`, `path.customer_id`")
    problem: str = Field(description="What is wrong with it")


class ErrorBody(BaseModel):
    """Every refusal's body, whatever its status: 401, 403, 404, 409, 422, 429."""

    error: str = Field(
        description="A stable code to act on: `validation_error`, `not_found`, `conflict`, ...",
        examples=["validation_error"],
    )
    detail: str = Field(
        description="What is wrong, for a person",
        examples=["language: String should have at most 35 characters"],
    )
    fields: list[FieldProblem] = Field(
        default_factory=list,
        description="Each field at fault, when some are (422); left out otherwise",
    )


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


async def _constraint_violation(_: Request, exc: Exception) -> JSONResponse:
    """A change PostgreSQL refused: 409 when it conflicts with stored rows, 422 when no row may
    hold it. Logged, as it means a service wrote before checking what it could have."""
    violation = violation_of(exc)
    if violation is None:  # an IntegrityError with no driver error under it: never seen
        raise exc
    said = refusal(violation)
    log.warning(
        "the database refused a change",
        constraint=violation.constraint_name,
        table=violation.table_name,
        sqlstate=violation.sqlstate,
    )
    status, code = (409, "conflict") if said.kind == "conflict" else (422, "validation_error")
    return JSONResponse(error_body(code, said.detail, said.fields), status_code=status)


# What each refusal means, for the OpenAPI document: every one has the body `ErrorBody`.
REFUSALS = {
    "401": "No token or key, or one that is unknown, expired or revoked",
    "404": "Nothing has that id (or the caller may not see it)",
    "422": "The request is not valid: `fields` names each problem",
}


def document_error_bodies(schema: dict[str, Any]) -> None:
    """Give every 4xx answer of an OpenAPI document the body the handlers write (`ErrorBody`)
    in place of FastAPI's own 422 schema, which no answer of ours has; a 401 where a token is
    needed, a 404 where the path names something."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components["ErrorBody"] = body
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                responses.setdefault("401", {"description": REFUSALS["401"]})
            if any(p.get("in") == "path" for p in operation.get("parameters", [])):
                responses.setdefault("404", {"description": REFUSALS["404"]})
            for status, response in responses.items():
                if status.startswith("4"):
                    if status == "422" and response.get("description") == "Validation Error":
                        response["description"] = REFUSALS["422"]
                    response["content"] = content


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # The ORM's error wraps the driver's; the hot paths (app.core.pg) raise the driver's own.
    app.add_exception_handler(IntegrityError, _constraint_violation)
    app.add_exception_handler(asyncpg.IntegrityConstraintViolationError, _constraint_violation)
