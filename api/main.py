"""The FastAPI app: lifespan with Postgres and Temporal, request ids, routes."""

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from api.errors import install_error_handlers
from api.ratelimit import RateLimiter
from api.routes import health, payments, runs
from api.services import Services
from settings import Settings, load_settings
from store.migrate import apply_migrations
from store.pool import create_pool

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API; settings are read from the environment when none are given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = settings or load_settings()
        services = await _open_services(config)
        app.state.services = services
        services.start()
        logger.info(
            "api ready temporal_address=%s task_queue=%s",
            config.temporal_address,
            config.temporal_task_queue,
        )
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="x402 rails",
        summary="HTTP 402 payment rails for paid agent runs (Cloak x402 on Starknet)",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.middleware("http")(_request_id)
    app.include_router(payments.router)
    app.include_router(runs.router)
    app.include_router(health.router)
    return app


async def _open_services(settings: Settings) -> Services:
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL: is required by the API but not set")
    dsn = settings.database_url.get_secret_value()
    pool = await create_pool(dsn)
    await apply_migrations(pool)
    # Lazy: the API starts while Temporal is down, answering 503 and a failing
    # /readyz until it comes back, instead of refusing to start.
    temporal = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        lazy=True,
    )
    limiter = RateLimiter(settings.x402_rate_limit_per_minute)
    return Services(settings=settings, pool=pool, temporal=temporal, limiter=limiter)


async def _request_id(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Every answer and its log line carry a request id (the caller's, if sent)."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
    request.state.request_id = request_id
    started = time.perf_counter()
    response = await call_next(request)
    response.headers[REQUEST_ID_HEADER] = request_id
    logger.info(
        "request done request_id=%s method=%s path=%s status=%s ms=%.1f",
        request_id,
        request.method,
        request.url.path,
        response.status_code,
        (time.perf_counter() - started) * 1000,
    )
    return response
