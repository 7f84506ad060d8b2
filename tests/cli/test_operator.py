"""Operator commands against a real Postgres, Temporal dev server and payment worker."""

import asyncio
import json
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
import typer
from click.testing import Result
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from cli.operator import register
from store.api_keys import hash_api_key
from store.payments import mark_payment_rejected
from store.pool import connection
from tests.factories import SECRET, TX_HASH
from tests.harness.starknet_node import StarknetNode, pre_confirmed
from tests.store.builders import WALLET, insert_agent, insert_payment, insert_run
from tests.waiting import eventually
from tests.workflows.rails import FAST_POLICY, Rails, running_rails
from workflows.models import PaymentProgress
from workflows.payment import PaymentWorkflow

# An hour between receipt checks: only an operator's signal explains another now.
SLOW_POLICY = FAST_POLICY.model_copy(
    update={"first_interval_seconds": 3600, "max_interval_seconds": 3600}
)
SERVICE_WALLET = "0x1425b174d1be627a1216f1871db61a89a4f58fe9f667cad778160699b3fdb22"
Env = dict[str, str | None]

APP = typer.Typer()
register(APP)


async def invoke(env: Env, *args: str) -> Result:
    """Run the CLI in a thread: it calls asyncio.run itself."""
    return await asyncio.to_thread(CliRunner().invoke, APP, list(args), env=env)


def explain(result: Result) -> str:
    return f"exit {result.exit_code}: {result.output} {result.exception!r}"


@pytest.fixture
def store_env(database_url: str) -> Env:
    """The environment of a command that only reads or writes the store."""
    return {
        "X402_FACILITATOR_SECRET": SECRET,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "TEMPORAL_NAMESPACE": "default",
        "COLUMNS": "200",
    }


@pytest.fixture
def cli_env(store_env: Env, temporal_dev_env: WorkflowEnvironment) -> Env:
    """The environment of a command that also reaches payment workflows."""
    address = temporal_dev_env.client.service_client.config.target_host
    return store_env | {"TEMPORAL_ADDRESS": address}


@pytest.fixture
async def rails(
    temporal_dev_env: WorkflowEnvironment,
    db_pool: asyncpg.Pool,
    starknet_node: StarknetNode,
) -> AsyncIterator[Rails]:
    """A payment worker whose settlement transaction stays pre-confirmed."""
    starknet_node.script(TX_HASH, pre_confirmed())
    async with running_rails(
        temporal_dev_env, db_pool, rpc_urls=[starknet_node.url], policy=SLOW_POLICY
    ) as rails:
        yield rails


async def waiting_payment(rails: Rails) -> str:
    """A payment whose workflow waits for finality; returns its payment ref."""
    challenge, payment = rails.presentation()
    answer, handle = await rails.settle(challenge, payment)
    assert answer.status == "pending"

    async def waiting() -> bool:
        progress: PaymentProgress = await handle.query(PaymentWorkflow.status)
        return progress.stage == "finality_wait"

    await eventually(waiting)
    return payment.payment_ref


async def test_api_key_create_shows_the_key_once_and_list_never(
    store_env: Env,
) -> None:
    created = await invoke(
        store_env, "api-keys", "create", "--wallet", WALLET, "--label", "ops"
    )
    found = re.search(r"x402k_[A-Za-z0-9_-]+", created.stdout)
    assert found is not None, explain(created)
    key = found.group()

    listed = await invoke(store_env, "api-keys", "list")
    listed_json = await invoke(store_env, "api-keys", "list", "--json")

    assert created.exit_code == 0, explain(created)
    assert created.stdout.count(key) == 1
    assert "not shown again" in created.stderr
    assert listed.exit_code == 0, explain(listed)
    assert "ops" in listed.stdout
    [record] = json.loads(listed_json.stdout)
    assert (record["wallet"], record["label"], record["is_admin"]) == (
        WALLET,
        "ops",
        False,
    )
    for output in (listed.output, listed_json.output):
        assert key not in output
        assert hash_api_key(key) not in output


async def test_api_key_revoke_marks_it_revoked_and_unknown_exits_1(
    store_env: Env,
) -> None:
    created = await invoke(
        store_env, "api-keys", "create", "--wallet", WALLET, "--admin", "--json"
    )
    key_id = json.loads(created.stdout)["key_id"]

    revoked = await invoke(store_env, "api-keys", "revoke", key_id)
    unknown = await invoke(store_env, "api-keys", "revoke", "key_nope")
    listed = await invoke(store_env, "api-keys", "list", "--wallet", WALLET, "--json")

    assert revoked.exit_code == 0, explain(revoked)
    assert unknown.exit_code == 1
    assert "no api key key_nope" in unknown.stderr
    [record] = json.loads(listed.stdout)
    assert record["is_admin"] is True
    assert record["revoked_at"] is not None


async def test_agents_add_then_list_shows_its_terms(store_env: Env) -> None:
    terms = ["--wallet", SERVICE_WALLET, "--token", "STRK"]

    added = await invoke(
        store_env,
        "agents",
        "add",
        "agent_steward",
        "--type",
        "staking_steward",
        "--price",
        "1000000000000000000",
        *terms,
    )
    updated = await invoke(
        store_env,
        "agents",
        "add",
        "agent_steward",
        "--type",
        "staking_steward",
        "--price",
        "2000000000000000000",
        "--network",
        "mainnet",
        *terms,
    )
    listed = await invoke(store_env, "agents", "list", "--json")
    table = await invoke(store_env, "agents", "list")

    assert added.exit_code == 0, explain(added)
    assert "added agent_steward" in added.stdout
    assert "updated agent_steward" in updated.stdout
    [agent] = json.loads(listed.stdout)
    assert agent["agent_id"] == "agent_steward"
    assert agent["agent_type"] == "staking_steward"
    assert agent["price_amount"] == "2000000000000000000"
    assert (agent["price_token"], agent["network"]) == ("STRK", "mainnet")
    assert agent["service_wallet"] == SERVICE_WALLET
    assert "agent_steward" in table.stdout


async def test_payments_list_filters_by_state_and_age(
    store_env: Env, db_pool: asyncpg.Pool
) -> None:
    async with connection(db_pool) as conn:
        await insert_payment(conn, "rk_waiting")
        await insert_payment(conn, "rk_refused")
        await mark_payment_rejected(
            conn, "rk_refused", reason_code="SETTLEMENT_FAILED", reason_detail="test"
        )

    pending = await invoke(
        store_env, "payments", "list", "--state", "pending", "--json"
    )
    old = await invoke(store_env, "payments", "list", "--older-than", "1h", "--json")
    table = await invoke(store_env, "payments", "list")

    assert pending.exit_code == 0, explain(pending)
    [record] = json.loads(pending.stdout)
    assert (record["payment_ref"], record["status"]) == ("pay_rk_waiting", "pending")
    assert record["amount"] == "100"
    assert json.loads(old.stdout) == []
    assert "pay_rk_waiting" in table.stdout
    assert "SETTLEMENT_FAILED" in table.stdout


async def test_payments_show_reports_the_finality_wait_stage(
    cli_env: Env, rails: Rails
) -> None:
    payment_ref = await waiting_payment(rails)

    shown = await invoke(cli_env, "payments", "show", payment_ref, "--json")
    table = await invoke(cli_env, "payments", "show", payment_ref)

    assert shown.exit_code == 0, explain(shown)
    answer = json.loads(shown.stdout)
    assert answer["payment"]["status"] == "pending"
    assert "payment_pending" in [event["signal"] for event in answer["events"]]
    assert answer["workflow"]["status"] == "RUNNING"
    assert answer["workflow"]["progress"]["stage"] == "finality_wait"
    assert table.exit_code == 0, explain(table)
    assert "finality_wait" in table.stdout


async def test_payments_show_without_workflow_says_no_workflow(
    cli_env: Env, db_pool: asyncpg.Pool
) -> None:
    async with connection(db_pool) as conn:
        await insert_payment(conn, "rk_orphan")

    shown = await invoke(cli_env, "payments", "show", "pay_rk_orphan")

    assert shown.exit_code == 0, explain(shown)
    assert "no workflow" in shown.stdout
    assert "pending" in shown.stdout


async def test_unknown_payment_ref_exits_1(cli_env: Env) -> None:
    shown = await invoke(cli_env, "payments", "show", "pay_rk_unknown")
    retried = await invoke(cli_env, "payments", "retry", "pay_rk_unknown")

    assert shown.exit_code == 1
    assert "no payment pay_rk_unknown" in shown.stderr
    assert retried.exit_code == 1
    assert "no workflow pay_rk_unknown" in retried.stderr


async def test_payments_retry_makes_the_workflow_check_again(
    cli_env: Env, rails: Rails, starknet_node: StarknetNode
) -> None:
    payment_ref = await waiting_payment(rails)
    checks_before = starknet_node.count("getTransactionReceipt", TX_HASH)

    retried = await invoke(cli_env, "payments", "retry", payment_ref)

    assert retried.exit_code == 0, explain(retried)

    async def checked_again() -> bool:
        return starknet_node.count("getTransactionReceipt", TX_HASH) > checks_before

    await eventually(checked_again)


async def test_payments_cancel_rejects_the_payment_then_refuses_again(
    cli_env: Env, rails: Rails
) -> None:
    payment_ref = await waiting_payment(rails)

    cancelled = await invoke(
        cli_env, "payments", "cancel", payment_ref, "--reason", "customer asked"
    )

    assert cancelled.exit_code == 0, explain(cancelled)

    async def rejected() -> bool:
        row = await rails.fetchrow(
            "select status, reason_detail from x402_payments where payment_ref = $1",
            payment_ref,
        )
        return row["status"] == "rejected" and "customer asked" in row["reason_detail"]

    await eventually(rejected)
    handle = rails.client.get_workflow_handle(payment_ref)
    await handle.result()
    again = await invoke(cli_env, "payments", "cancel", payment_ref, "--reason", "x")
    assert again.exit_code == 1
    assert "is closed (COMPLETED)" in again.stderr


async def test_runs_list_and_show_read_the_wallets_runs(
    store_env: Env, db_pool: asyncpg.Pool
) -> None:
    async with connection(db_pool) as conn:
        await insert_agent(conn)
        paid = await insert_run(conn)
        free = await insert_run(conn, billable=False)

    listed = await invoke(store_env, "runs", "list", "--wallet", WALLET, "--json")
    queued = await invoke(
        store_env, "runs", "list", "--wallet", WALLET, "--status", "queued", "--json"
    )
    shown = await invoke(store_env, "runs", "show", paid.run_id, "--json")
    table = await invoke(store_env, "runs", "show", paid.run_id)
    unknown = await invoke(store_env, "runs", "show", "run_unknown")

    assert listed.exit_code == 0, explain(listed)
    page = json.loads(listed.stdout)
    assert {run["run_id"] for run in page["runs"]} == {paid.run_id, free.run_id}
    assert page["next_before"] is None
    assert [run["run_id"] for run in json.loads(queued.stdout)["runs"]] == [free.run_id]
    answer = json.loads(shown.stdout)
    assert answer["run"]["status"] == "pending_payment"
    assert [event["signal"] for event in answer["events"]] == ["run_pending_payment"]
    assert "pending_payment" in table.stdout
    assert unknown.exit_code == 1
    assert "no run run_unknown" in unknown.stderr


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("X402_FACILITATOR_SECRET", "X402_FACILITATOR_SECRET"),
        ("DATABASE_URL", "DATABASE_URL"),
    ],
)
async def test_missing_setting_exits_2_naming_the_variable(
    store_env: Env, missing: str, named: str
) -> None:
    env = store_env | {missing: None}

    result = await invoke(env, "payments", "list")

    assert result.exit_code == 2, explain(result)
    assert named in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("dsn", "server", "password"),
    [
        ("postgresql://ops:hunter2@127.0.0.1:1/x402", "127.0.0.1:1/x402", "hunter2"),
        # An unencoded '@' and '/' in the password: no part of it may show.
        ("postgresql://ops:a@x.invalid/secret@127.0.0.1:1/x402", "hidden", "secret"),
    ],
)
async def test_unreachable_postgres_names_database_url_but_not_its_password(
    store_env: Env, dsn: str, server: str, password: str
) -> None:
    env = store_env | {"DATABASE_URL": dsn}

    result = await invoke(env, "agents", "list", "--json")

    assert result.exit_code == 2, explain(result)
    assert "DATABASE_URL" in result.stderr
    assert server in result.stderr
    assert password not in result.output
    assert result.stdout == ""


async def test_unmigrated_database_exits_2_saying_to_migrate(
    store_env: Env, empty_database_url: str
) -> None:
    env = store_env | {"DATABASE_URL": empty_database_url}

    result = await invoke(env, "payments", "list")

    assert result.exit_code == 2, explain(result)
    assert "DATABASE_URL" in result.stderr
    assert "apply the migrations" in result.stderr


@pytest.mark.parametrize(
    ("setting", "value"),
    [("TEMPORAL_ADDRESS", "127.0.0.1:1"), ("TEMPORAL_NAMESPACE", "no-such-space")],
)
async def test_unusable_temporal_exits_2_naming_the_variable(
    cli_env: Env, setting: str, value: str
) -> None:
    env = cli_env | {setting: value}

    result = await invoke(env, "payments", "retry", "pay_rk_any")

    assert result.exit_code == 2, explain(result)
    assert setting in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["payments", "show", "rk_missing_prefix"],
        ["payments", "list", "--older-than", "ten minutes"],
        [
            "agents",
            "add",
            "agent_x",
            "--type",
            "swap_runner",
            "--wallet",
            "0x1",
            "--price",
            "1.5",
            "--token",
            "STRK",
        ],
    ],
)
async def test_bad_usage_exits_2(store_env: Env, args: list[str]) -> None:
    result = await invoke(store_env, *args)

    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""
