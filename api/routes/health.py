"""Health, readiness and the Prometheus scrape endpoint."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from api.errors import unavailable
from metrics import OLDEST_PENDING_PAYMENT_AGE, REGISTRY
from store import payments
from store.errors import StoreUnavailable
from store.pool import connection

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def read_health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def read_readiness(services: ServicesDep) -> dict[str, str]:
    """Postgres and Temporal both answer; otherwise 503 naming the one that does not."""
    try:
        async with connection(services.pool) as conn:
            await conn.fetchval("select 1")
    except Exception as error:
        raise unavailable("Postgres") from error
    try:
        await services.temporal.service_client.check_health()
    except Exception as error:
        raise unavailable("Temporal") from error
    return {"status": "ready", "postgres": "ok", "temporal": "ok"}


@router.get("/metrics", response_class=Response)
async def read_metrics(services: ServicesDep) -> Response:
    """Prometheus text of this API process, with the oldest pending payment's age."""
    try:
        async with connection(services.pool) as conn:
            age = await payments.oldest_pending_age_seconds(conn)
        OLDEST_PENDING_PAYMENT_AGE.set(age)
    except StoreUnavailable:
        # The scrape still answers; the gauge keeps its last value.
        pass
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
