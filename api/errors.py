"""Every error a client can cause ends in a 4xx with a one-line ``detail``, never a traceback."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pipelines.errors import NotFound, ServiceUnavailable, UserError

log = logging.getLogger("api")


def _location(loc: tuple) -> str:
    """'parameters.channel' for a body field, 'path campaign_id' for a parameter, 'body' for the whole."""
    parts = [str(p) for p in loc]
    if not parts:
        return "body"
    where, rest = parts[0], ".".join(parts[1:])
    if where == "body":
        return rest or "body"
    if where in ("path", "query", "header", "cookie"):
        return f"{where} {rest}" if rest else where
    return ".".join(parts)


def describe(errors: list[dict]) -> str:
    first = errors[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{_location(tuple(first.get('loc', ())))}: {message}{more}"


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": describe(errors), "errors": errors})


async def _user_error(request: Request, exc: UserError) -> JSONResponse:
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, ServiceUnavailable):
        status = 503
    else:
        status = 422
    return JSONResponse(status_code=status, content={"detail": str(exc)})


async def _database_down(request: Request, exc: sa.exc.DBAPIError) -> JSONResponse:
    if exc.connection_invalidated or isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        log.error("database unreachable: %s", type(exc.orig).__name__)
        return JSONResponse(status_code=503, content={"detail": "the database is unreachable; retry later"})
    raise exc


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(UserError, _user_error)  # type: ignore[arg-type]
    app.add_exception_handler(sa.exc.OperationalError, _database_down)  # type: ignore[arg-type]
    app.add_exception_handler(sa.exc.InterfaceError, _database_down)  # type: ignore[arg-type]
