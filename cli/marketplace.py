"""The ``runs``, ``api-keys`` and ``agents`` commands: the marketplace's records."""

from enum import StrEnum
from typing import Annotated, Any

import typer

from cli.connections import Refused, open_store, run_command
from cli.output import (
    JsonOption,
    format_time,
    jsonable,
    print_done,
    print_events,
    print_fields,
    print_json,
    print_table,
    print_warning,
    shorten,
    state_text,
    stdout,
)
from protocol.amounts import AmountSyntaxError, parse_amount
from settings import Settings
from store import agents, api_keys, runs
from store.errors import NotFound
from store.events import list_events
from store.records import U256_MAX, AgentSpec, AgentType, RunRecord, RunStatus

runs_app = typer.Typer(help="Agent runs of an operator wallet.", no_args_is_help=True)
api_keys_app = typer.Typer(
    help="API keys of operator wallets; only their hash is stored.",
    no_args_is_help=True,
)
agents_app = typer.Typer(
    help="Marketplace agents, their price and service wallet.", no_args_is_help=True
)


class Network(StrEnum):
    SEPOLIA = "sepolia"
    MAINNET = "mainnet"


def parse_price(text: str) -> int:
    """A price in the token's base units (wei-like), e.g. 10**18 for 1 STRK."""
    try:
        amount = parse_amount(text)
    except AmountSyntaxError:
        amount = -1
    if not text.strip() or not 0 <= amount <= U256_MAX:
        raise typer.BadParameter(
            f"{text!r} is not a price: give a whole number of the token's base "
            "units, e.g. 1000000000000000000 for 1 STRK"
        )
    return amount


@runs_app.command("list")
def list_runs_command(
    wallet: Annotated[
        str, typer.Option(help="The operator wallet whose runs to list.")
    ],
    status: Annotated[
        RunStatus | None, typer.Option(help="Only runs in this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    before: Annotated[
        str | None,
        typer.Option(metavar="RUN_ID", help="The next page: runs older than this one."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """An operator wallet's runs, newest first."""
    run_command(
        _list_runs,
        wallet=wallet,
        status=status,
        limit=limit,
        before=before,
        as_json=as_json,
    )


@runs_app.command("show")
def show_run_command(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID")],
    as_json: JsonOption = False,
) -> None:
    """A run's row and its events."""
    run_command(_show_run, run_id=run_id, as_json=as_json)


async def _list_runs(
    settings: Settings,
    *,
    wallet: str,
    status: RunStatus | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    async with open_store(settings) as conn:
        page = await runs.list_runs(
            conn, operator_wallet=wallet, status=status, limit=limit, before=before
        )

    if as_json:
        print_json(
            {
                "runs": [jsonable(run) for run in page.runs],
                "next_before": page.next_before,
            }
        )
        return
    print_table(
        f"Runs of {wallet}",
        ["run id", "agent", "action", "status", "payment ref", "created"],
        (
            [
                run.run_id,
                run.agent_id,
                run.action,
                state_text(run.status),
                run.payment_ref or "",
                format_time(run.created_at) or "",
            ]
            for run in page.runs
        ),
    )
    if page.next_before is not None:
        stdout().print(f"more: --before {page.next_before}", style="dim")


async def _show_run(settings: Settings, *, run_id: str, as_json: bool) -> None:
    async with open_store(settings) as conn:
        run = await runs.get_run(conn, run_id)
        events = await list_events(conn, run_id=run_id)
    if run is None:
        raise Refused(f"no run {run_id}")

    if as_json:
        print_json(
            {"run": jsonable(run), "events": [jsonable(event) for event in events]}
        )
        return
    print_fields(f"Run {run_id}", _run_fields(run))
    print_events(events)


def _run_fields(run: RunRecord) -> list[tuple[str, Any]]:
    return [
        ("status", state_text(run.status)),
        ("agent", run.agent_id),
        ("operator wallet", run.operator_wallet),
        ("action", run.action),
        ("params", run.params),
        ("billable", "yes" if run.billable else "no"),
        ("payment ref", run.payment_ref),
        ("execution txs", ", ".join(run.execution_tx_hashes) or None),
        ("result", run.result),
        ("error", run.error),
        ("created", format_time(run.created_at)),
        ("started", format_time(run.started_at)),
        ("finished", format_time(run.finished_at)),
    ]


@api_keys_app.command("create")
def create_api_key_command(
    wallet: Annotated[str, typer.Option(help="The operator wallet the key acts for.")],
    label: Annotated[
        str | None, typer.Option(help="A note to tell keys apart.")
    ] = None,
    admin: Annotated[
        bool,
        typer.Option(
            "--admin", help="Allow operator calls: retry and cancel payments."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """A new key; its plaintext is printed now and never again."""
    run_command(
        _create_api_key, wallet=wallet, label=label, admin=admin, as_json=as_json
    )


@api_keys_app.command("revoke")
def revoke_api_key_command(
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID")],
) -> None:
    """Revoke a key at once; a revoked key stays listed."""
    run_command(_revoke_api_key, key_id=key_id)


@api_keys_app.command("list")
def list_api_keys_command(
    wallet: Annotated[str | None, typer.Option(help="Only this wallet's keys.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Keys oldest first, revoked ones included; never their hash."""
    run_command(_list_api_keys, wallet=wallet, as_json=as_json)


async def _create_api_key(
    settings: Settings, *, wallet: str, label: str | None, admin: bool, as_json: bool
) -> None:
    async with open_store(settings) as conn:
        plaintext, record = await api_keys.create_api_key(
            conn, wallet=wallet, label=label, is_admin=admin
        )

    if as_json:
        print_json({**jsonable(record), "api_key": plaintext})
    else:
        print_done(f"created {record.key_id} for {record.wallet}")
        typer.echo(plaintext)
    print_warning("store this key now: it is not shown again")


async def _revoke_api_key(settings: Settings, *, key_id: str) -> None:
    async with open_store(settings) as conn:
        try:
            record = await api_keys.revoke_api_key(conn, key_id)
        except NotFound:
            raise Refused(f"no api key {key_id}; see `api-keys list`") from None
    print_done(
        f"{key_id} of {record.wallet} revoked since {format_time(record.revoked_at)}"
    )


async def _list_api_keys(
    settings: Settings, *, wallet: str | None, as_json: bool
) -> None:
    async with open_store(settings) as conn:
        records = await api_keys.list_api_keys(conn, wallet=wallet)

    if as_json:
        print_json([jsonable(record) for record in records])
        return
    print_table(
        "API keys",
        ["key id", "wallet", "label", "admin", "created", "revoked"],
        (
            [
                record.key_id,
                shorten(record.wallet),
                record.label or "",
                "yes" if record.is_admin else "no",
                format_time(record.created_at) or "",
                format_time(record.revoked_at) or "",
            ]
            for record in records
        ),
    )


@agents_app.command("add")
def add_agent_command(
    agent_id: Annotated[str, typer.Argument(metavar="AGENT_ID")],
    agent_type: Annotated[AgentType, typer.Option("--type", help="What it runs.")],
    wallet: Annotated[
        str, typer.Option(metavar="SERVICE_WALLET", help="Where its payments go.")
    ],
    price: Annotated[
        int,
        typer.Option(
            metavar="AMOUNT",
            parser=parse_price,
            help="Price of one run in the token's base units.",
        ),
    ],
    token: Annotated[str, typer.Option(help="Token of the price, e.g. STRK.")],
    network: Annotated[
        Network | None, typer.Option(help="Defaults to X402_NETWORK.")
    ] = None,
    tongo_recipient: Annotated[
        str | None, typer.Option(help="Shielded (Tongo) recipient, if it takes one.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Add an agent, or replace the terms of one with this id."""
    run_command(
        _add_agent,
        agent_id=agent_id,
        agent_type=agent_type,
        wallet=wallet,
        price=price,
        token=token,
        network=network,
        tongo_recipient=tongo_recipient,
        as_json=as_json,
    )


@agents_app.command("list")
def list_agents_command(
    agent_type: Annotated[
        AgentType | None, typer.Option("--type", help="Only agents of this type.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Agents by id, with their price and service wallet."""
    run_command(_list_agents, agent_type=agent_type, as_json=as_json)


async def _add_agent(
    settings: Settings,
    *,
    agent_id: str,
    agent_type: AgentType,
    wallet: str,
    price: int,
    token: str,
    network: Network | None,
    tongo_recipient: str | None,
    as_json: bool,
) -> None:
    spec = AgentSpec(
        agent_id=agent_id,
        agent_type=agent_type,
        service_wallet=wallet,
        price_amount=price,
        price_token=token,
        tongo_recipient=tongo_recipient,
        network=network or settings.x402_network,
    )
    async with open_store(settings) as conn:
        existing = await agents.get_agent(conn, agent_id)
        record = await agents.upsert_agent(conn, spec)

    if as_json:
        print_json(jsonable(record))
        return
    verb = "added" if existing is None else "updated"
    print_done(
        f"{verb} {record.agent_id}: {record.agent_type} at {record.price_amount} "
        f"{record.price_token} on {record.network}, paid to {record.service_wallet}"
    )


async def _list_agents(
    settings: Settings, *, agent_type: AgentType | None, as_json: bool
) -> None:
    async with open_store(settings) as conn:
        records = await agents.list_agents(conn, agent_type=agent_type)

    if as_json:
        print_json([jsonable(record) for record in records])
        return
    print_table(
        "Agents",
        ["agent id", "type", "price", "network", "service wallet", "tongo recipient"],
        (
            [
                record.agent_id,
                record.agent_type,
                f"{record.price_amount} {record.price_token}",
                record.network,
                shorten(record.service_wallet),
                shorten(record.tongo_recipient or ""),
            ]
            for record in records
        ),
    )
