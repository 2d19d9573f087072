"""Building the FastAPI application: store, authentication, rate limit, TAXII errors.

Clients authenticate with an API key, either `Authorization: Bearer KEY` or
HTTP Basic with the key as password and any user name (what stock TAXII
clients such as taxii2-client send). Every request costs a token of the key's
bucket; an empty bucket answers 429 with Retry-After.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from necoma.config import ExchangeSettings
from necoma.exchange import admin
from necoma.exchange.admin import Principal
from necoma.exchange.db import open_engine, session_factory
from necoma.exchange.taxii.ratelimit import TokenBuckets

TAXII = "application/taxii+json;version=2.1"
STIX = "application/stix+json;version=2.1"


class TaxiiError(Exception):
    def __init__(self, http_status: int, title: str, description: str = "", details: dict | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(title)
        self.http_status, self.title, self.description = http_status, title, description
        self.details, self.headers = details, headers or {}


@dataclass
class Service:
    sessions: sessionmaker[Session]
    settings: ExchangeSettings
    limiter: TokenBuckets
    notifier: "Notifier"


def token_from(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def authenticate(request: Request) -> Principal:
    """FastAPI dependency: the calling principal, or 401 / 429."""
    svc: Service = request.app.state.service
    token = token_from(request.headers.get("authorization"))
    principal = None
    if token:
        with svc.sessions() as s:
            principal = admin.authenticate(s, token)
    if principal is None:
        raise TaxiiError(401, "Authentication required", "send an API key as Bearer token or Basic password",
                         headers={"WWW-Authenticate": 'Basic realm="necoma", Bearer'})
    wait = svc.limiter.take(principal.key_id)
    if wait > 0:
        raise TaxiiError(429, "Too many requests", f"rate limit of key {principal.key_id}",
                         headers={"Retry-After": TokenBuckets.retry_after(wait)})
    return principal


def error_response(exc: TaxiiError, media_type: str = TAXII) -> JSONResponse:
    body = {"title": exc.title, "description": exc.description, "http_status": str(exc.http_status)}
    if exc.details is not None:
        body["details"] = exc.details
    return JSONResponse(body, status_code=exc.http_status, headers=exc.headers, media_type=media_type)


def _media(request: Request) -> str:
    return TAXII if request.url.path.startswith("/taxii2/") else "application/json"


def create_app(database_url: str, settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    engine = open_engine(database_url)
    sessions = session_factory(engine)
    with sessions.begin() as s:
        admin.ensure_public_collection(s, settings.org_name)
    app = FastAPI(title="necoma exchange", docs_url=None, redoc_url=None, openapi_url=None)
    from necoma.exchange.timeline.stream import Notifier

    app.state.service = Service(sessions, settings, TokenBuckets(settings.rate_per_second, settings.rate_burst),
                                Notifier())
    app.state.engine = engine

    @app.exception_handler(TaxiiError)
    async def _taxii_error(request: Request, exc: TaxiiError) -> JSONResponse:
        return error_response(exc, _media(request))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(TaxiiError(400, "Bad request", str(exc.errors()[:3])), _media(request))

    from necoma.exchange.taxii import routes  # here, so routes can import this module's helpers
    from necoma.exchange.timeline import routes as timeline_routes
    from necoma.exchange.timeline import social_routes

    from necoma.exchange import feeds, n6

    app.include_router(routes.router)
    app.include_router(timeline_routes.router)
    app.include_router(social_routes.router)
    app.include_router(n6.router)
    app.include_router(feeds.router)
    from necoma.exchange.bodylimit import BodyLimit

    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    return app
