"""How operator commands reach Postgres and Temporal, and how they fail.

CommandError            the command stops; the message names what to fix
├── Refused             exit 1: not found, or the state forbids the change
└── Unusable            exit 2: a setting is wrong or a server unreachable
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg
import typer
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from cli.output import print_error
from settings import Settings, SettingsError, load_settings
from store.errors import StoreUnavailable
from store.pool import (
    CLOSED_CONNECTION_ERRORS,
    UNAVAILABLE_ERRORS,
    connect,
    describe_dsn,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_UNUSABLE = 2

TEMPORAL_CONNECT_TIMEOUT_SECONDS = 10.0
TEMPORAL_RPC_TIMEOUT = timedelta(seconds=10)


class CommandError(Exception):
    """The command cannot go on; ``exit_code`` says whose fault it is."""

    exit_code = EXIT_UNUSABLE


class Refused(CommandError):
    """The thing named does not exist, or its state forbids the change."""

    exit_code = EXIT_REFUSED


class Unusable(CommandError):
    """A setting is wrong or a server cannot be reached."""

    exit_code = EXIT_UNUSABLE


def run_command(
    command: Callable[..., Coroutine[Any, Any, None]], **options: Any
) -> None:
    """Load the settings, run ``command(settings, **options)`` in a fresh loop."""
    try:
        settings = load_settings()
        asyncio.run(command(settings, **options))
    except SettingsError as error:
        _stop(str(error), EXIT_UNUSABLE)
    except CommandError as error:
        _stop(str(error), error.exit_code)


@asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the payment store; a lost server names DATABASE_URL."""
    if settings.database_url is None:
        raise Unusable(
            "DATABASE_URL is required but not set: set it to the payment store's "
            "Postgres DSN"
        )
    dsn = settings.database_url.get_secret_value()
    server = describe_server(dsn)
    try:
        conn = await connect(dsn)
    except StoreUnavailable as error:
        detail = _scrub(dsn, _cause_of(error))
        raise Unusable(
            f"DATABASE_URL: cannot reach Postgres at {server} ({detail})"
        ) from None
    except (ValueError, OverflowError, asyncpg.InterfaceError) as error:
        detail = _scrub(dsn, str(error))
        raise Unusable(
            f"DATABASE_URL is not a usable Postgres DSN ({detail})"
        ) from None

    try:
        yield conn
    except (*UNAVAILABLE_ERRORS, *CLOSED_CONNECTION_ERRORS) as error:
        detail = _scrub(dsn, f"{type(error).__name__}: {error}")
        raise Unusable(
            f"DATABASE_URL: lost the connection to Postgres at {server} ({detail})"
        ) from None
    except asyncpg.UndefinedTableError:
        raise Unusable(
            f"DATABASE_URL: {server} has no payment store tables; start the worker "
            "or the API once to apply the migrations"
        ) from None
    finally:
        with contextlib.suppress(*UNAVAILABLE_ERRORS, *CLOSED_CONNECTION_ERRORS):
            await conn.close(timeout=5)


async def connect_temporal(settings: Settings) -> Client:
    """A client on TEMPORAL_ADDRESS whose namespace is known to exist."""
    address, namespace = settings.temporal_address, settings.temporal_namespace
    try:
        client = await asyncio.wait_for(
            Client.connect(
                address, namespace=namespace, data_converter=pydantic_data_converter
            ),
            TEMPORAL_CONNECT_TIMEOUT_SECONDS,
        )
    except (RuntimeError, TimeoutError) as error:
        reason = str(error) or f"no answer in {TEMPORAL_CONNECT_TIMEOUT_SECONDS:g} s"
        raise Unusable(
            f"TEMPORAL_ADDRESS: cannot reach Temporal at {address} ({reason})"
        ) from None

    # A missing namespace would otherwise read as "no such workflow" later.
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace),
            timeout=TEMPORAL_RPC_TIMEOUT,
        )
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise Unusable(
                f"TEMPORAL_NAMESPACE: no namespace {namespace!r} on {address}"
            ) from None
        raise temporal_failed(settings, error) from None
    return client


async def describe_workflow(
    settings: Settings, handle: WorkflowHandle[Any, Any]
) -> WorkflowExecutionDescription | None:
    """The latest run of the workflow, or None when Temporal has no such id."""
    try:
        return await handle.describe(rpc_timeout=TEMPORAL_RPC_TIMEOUT)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return None
        raise temporal_failed(settings, error) from None


def temporal_failed(settings: Settings, error: RPCError) -> Unusable:
    """An RPC refused for reasons of the server, not of the workflow."""
    return Unusable(
        f"TEMPORAL_ADDRESS: Temporal at {settings.temporal_address} refused the call "
        f"({error.status.name if error.status else 'unknown'}: {error.message})"
    )


def describe_server(dsn: str) -> str:
    """``host[:port]/database`` of DATABASE_URL, never any part of its password."""
    # describe_dsn takes the host from the last '@' before the first '/': a
    # password holding an unencoded '@' and '/' would still show in part.
    if dsn.count("@") > 1:
        return "(DSN hidden: percent-encode the '@' in its user or password)"
    return describe_dsn(dsn)


def _cause_of(error: Exception) -> str:
    cause = error.__cause__
    return f"{type(cause).__name__}: {cause}" if cause else "no answer"


def _scrub(dsn: str, text: str) -> str:
    """``text`` without the DSN's password, should a driver message quote it."""
    try:
        password = urlsplit(dsn).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def _stop(message: str, exit_code: int) -> NoReturn:
    print_error(message)
    raise typer.Exit(exit_code)
