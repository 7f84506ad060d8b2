"""Dependencies of the routes: services, the caller's API key, rate limits."""

import math
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from api.services import Services
from store.api_keys import authenticate_api_key
from store.pool import connection
from store.records import ApiKeyRecord


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_key(request: Request, services: ServicesDep) -> ApiKeyRecord:
    """The live API key of ``Authorization: Bearer`` (or ``x-api-key``), else 401."""
    presented = _presented_key(request)
    if not presented:
        raise ApiError(401, "UNAUTHORIZED", "an API key is required (Bearer token)")

    async with connection(services.pool) as conn:
        key = await authenticate_api_key(conn, presented)
    if key is None:
        raise ApiError(401, "UNAUTHORIZED", "the API key is unknown or revoked")
    request.state.actor = f"wallet:{key.wallet}"
    return key


async def admin_key(key: Annotated[ApiKeyRecord, Depends(current_key)]) -> ApiKeyRecord:
    """An admin API key, else 403."""
    if not key.is_admin:
        raise ApiError(403, "FORBIDDEN", "this operation needs an admin API key")
    return key


CurrentKey = Annotated[ApiKeyRecord, Depends(current_key)]
AdminKey = Annotated[ApiKeyRecord, Depends(admin_key)]


def rate_limited(scope: str) -> Callable[[Request, Services], Awaitable[None]]:
    """A dependency that spends one request of ``scope`` for the caller, or 429."""

    async def spend(request: Request, services: ServicesDep) -> None:
        actor = getattr(request.state, "actor", None) or _peer_actor(
            request, services.settings.x402_trusted_proxies
        )
        wait = services.limiter.acquire(scope, actor)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise ApiError(
                429,
                "RATE_LIMITED",
                f"too many {scope} requests; retry in {seconds} s",
                details={"retry_after": seconds, "scope": scope},
                headers={"Retry-After": str(seconds)},
            )

    return spend


def _presented_key(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


def _peer_actor(request: Request, trusted_proxies: list[str]) -> str:
    """The client address; X-Forwarded-For counts only from a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in trusted_proxies:
        # The rightmost address not ours is the one our proxy saw connect.
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        untrusted = [hop for hop in hops if hop not in trusted_proxies]
        if untrusted:
            return f"ip:{untrusted[-1]}"
    return f"ip:{peer}"
