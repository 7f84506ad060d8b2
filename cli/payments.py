"""The ``payments`` commands: payment rows, their events, and their workflows."""

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from cli.connections import (
    TEMPORAL_RPC_TIMEOUT,
    Refused,
    connect_temporal,
    describe_workflow,
    open_store,
    run_command,
    temporal_failed,
)
from cli.output import (
    JsonOption,
    format_age,
    format_time,
    jsonable,
    print_done,
    print_events,
    print_fields,
    print_json,
    print_table,
    state_text,
    stdout,
)
from settings import Settings
from store import payments
from store.events import list_events
from store.records import PaymentRecord, PaymentStatus
from workflows.models import PaymentProgress
from workflows.payment import PaymentWorkflow

_AGE = re.compile(r"([0-9]+)\s*([smhd])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

payments_app = typer.Typer(
    help="Payments, by payment ref: list, inspect, retry or cancel their workflows.",
    no_args_is_help=True,
)


class WorkflowView(BaseModel):
    """A payment's workflow as Temporal describes it, with its ``status`` query."""

    workflow_id: str
    run_id: str
    status: str
    task_queue: str
    started_at: datetime
    closed_at: datetime | None
    progress: PaymentProgress | None
    query_error: str | None = None


def parse_age(text: str) -> timedelta:
    """``30s``, ``10m``, ``1h`` or ``2d`` as a timedelta."""
    found = _AGE.fullmatch(text.strip().lower())
    if found is None:
        raise typer.BadParameter(f"{text!r} is not an age such as 30s, 10m, 1h or 2d")
    return timedelta(**{_AGE_UNITS[found.group(2)]: int(found.group(1))})


def parse_payment_ref(text: str) -> str:
    """A payment ref, ``pay_<replayKey>``, as the API and the workflow id spell it."""
    if not text.startswith("pay_") or text == "pay_":
        raise typer.BadParameter(
            f"{text!r} is not a payment ref; payment refs look like pay_<replayKey>"
        )
    return text


PaymentRef = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        parser=parse_payment_ref,
        help="The payment ref, pay_<replayKey>.",
    ),
]


@payments_app.command("list")
def list_payments_command(
    state: Annotated[
        PaymentStatus | None, typer.Option(help="Only payments in this state.")
    ] = None,
    older_than: Annotated[
        timedelta | None,
        typer.Option(
            metavar="AGE",
            parser=parse_age,
            help="Only payments created longer ago than AGE: 30s, 10m, 1h, 2d.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """Payments oldest first, e.g. those still pending after ten minutes."""
    run_command(
        _list_payments, state=state, older_than=older_than, limit=limit, as_json=as_json
    )


@payments_app.command("show")
def show_payment_command(payment_ref: PaymentRef, as_json: JsonOption = False) -> None:
    """A payment's row, its events, and where its workflow stands."""
    run_command(_show_payment, payment_ref=payment_ref, as_json=as_json)


@payments_app.command("retry")
def retry_payment_command(payment_ref: PaymentRef) -> None:
    """Make a waiting workflow check the receipt now, or rerun a failed run."""
    run_command(_signal_payment, payment_ref=payment_ref, reason=None)


@payments_app.command("cancel")
def cancel_payment_command(
    payment_ref: PaymentRef,
    reason: Annotated[
        str, typer.Option(help="Why, for the audit trail and the rejection detail.")
    ],
) -> None:
    """Stop waiting for finality: the payment is rejected, its run cancelled."""
    if not reason.strip():
        raise typer.BadParameter("give a reason", param_hint="--reason")
    run_command(_signal_payment, payment_ref=payment_ref, reason=reason.strip())


async def _list_payments(
    settings: Settings,
    *,
    state: PaymentStatus | None,
    older_than: timedelta | None,
    limit: int,
    as_json: bool,
) -> None:
    async with open_store(settings) as conn:
        records = await payments.list_payments(
            conn, status=state, older_than=older_than, limit=limit
        )

    if as_json:
        print_json([jsonable(record) for record in records])
        return
    print_table(
        "Payments",
        ["payment ref", "status", "amount", "network", "created", "age", "reason"],
        (
            [
                record.payment_ref,
                state_text(record.status),
                f"{record.amount} {record.token}",
                record.network,
                format_time(record.created_at) or "",
                format_age(record.created_at),
                record.reason_code or "",
            ]
            for record in records
        ),
    )


async def _show_payment(settings: Settings, *, payment_ref: str, as_json: bool) -> None:
    async with open_store(settings) as conn:
        record = await payments.get_payment_by_ref(conn, payment_ref)
        events = await list_events(conn, payment_ref=payment_ref)
    client = await connect_temporal(settings)
    workflow = await _read_workflow(settings, client, payment_ref)
    if record is None and workflow is None and not events:
        raise Refused(
            f"no payment {payment_ref}: no row in the store and no workflow in "
            f"namespace {settings.temporal_namespace}"
        )

    if as_json:
        print_json(
            {
                "payment": None if record is None else jsonable(record),
                "events": [jsonable(event) for event in events],
                "workflow": None if workflow is None else jsonable(workflow),
            }
        )
        return
    if record is None:
        stdout().print(f"Payment {payment_ref}: no row in the store (never claimed)")
    else:
        print_fields(f"Payment {payment_ref}", _payment_fields(record))
    print_events(events)
    if workflow is None:
        stdout().print(f"Workflow: no workflow {payment_ref}")
    else:
        print_fields(f"Workflow {workflow.workflow_id}", _workflow_fields(workflow))


async def _read_workflow(
    settings: Settings, client: Client, payment_ref: str
) -> WorkflowView | None:
    handle = client.get_workflow_handle(payment_ref)
    description = await describe_workflow(settings, handle)
    if description is None:
        return None

    progress, query_error = None, None
    try:
        progress = await handle.query(
            PaymentWorkflow.status, rpc_timeout=TEMPORAL_RPC_TIMEOUT
        )
    except WorkflowQueryFailedError as error:
        query_error = f"the status query failed: {error}"
    except RPCError as error:
        # A closed workflow is answered by replay, which needs a worker on its queue.
        query_error = f"no worker answered the status query ({error.message})"
    return WorkflowView(
        workflow_id=description.id,
        run_id=description.run_id,
        status=description.status.name if description.status else "UNKNOWN",
        task_queue=description.task_queue,
        started_at=description.start_time,
        closed_at=description.close_time,
        progress=progress,
        query_error=query_error,
    )


async def _signal_payment(
    settings: Settings, *, payment_ref: str, reason: str | None
) -> None:
    verb = "retry" if reason is None else "cancel"
    client = await connect_temporal(settings)
    handle = client.get_workflow_handle(payment_ref)
    description = await describe_workflow(settings, handle)
    if description is None:
        raise Refused(
            f"no workflow {payment_ref} in namespace {settings.temporal_namespace}: "
            f"nothing to {verb}"
        )
    if description.status is not WorkflowExecutionStatus.RUNNING:
        status = description.status.name if description.status else "UNKNOWN"
        raise Refused(
            f"the workflow {payment_ref} is closed ({status}): nothing to {verb}"
        )

    try:
        if reason is None:
            await handle.signal(PaymentWorkflow.retry, rpc_timeout=TEMPORAL_RPC_TIMEOUT)
        else:
            await handle.signal(
                PaymentWorkflow.cancel, reason, rpc_timeout=TEMPORAL_RPC_TIMEOUT
            )
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise Refused(
                f"the workflow {payment_ref} closed before the {verb} reached it"
            ) from None
        raise temporal_failed(settings, error) from None

    if reason is None:
        print_done(f"retry sent to {payment_ref}: it checks the receipt now")
    else:
        print_done(
            f"cancel sent to {payment_ref}: a payment still waiting is rejected, "
            "its run cancelled"
        )


def _payment_fields(record: PaymentRecord) -> list[tuple[str, Any]]:
    reason = record.reason_code and f"{record.reason_code}: {record.reason_detail}"
    return [
        ("status", state_text(record.status)),
        ("amount", f"{record.amount} {record.token}"),
        ("network", record.network),
        ("payer", record.payer),
        ("recipient", record.recipient),
        ("challenge", record.challenge_id),
        ("replay key", record.replay_key),
        ("settlement tx", record.settlement_tx_hash),
        ("finality", record.finality),
        ("reason", reason),
        ("created", format_time(record.created_at)),
        ("updated", format_time(record.updated_at)),
        ("settled", format_time(record.settled_at)),
    ]


def _workflow_fields(view: WorkflowView) -> list[tuple[str, Any]]:
    fields: list[tuple[str, Any]] = [
        ("status", state_text(view.status)),
        ("run id", view.run_id),
        ("task queue", view.task_queue),
        ("started", format_time(view.started_at)),
        ("closed", format_time(view.closed_at)),
        ("query", view.query_error),
    ]
    progress = view.progress
    if progress is None:
        return fields
    last = progress.checks[-1] if progress.checks else None
    checks = str(progress.check_count)
    if last is not None:
        checks += f", last {last.outcome} at {format_time(last.at)}: {last.detail}"
    return [
        *fields,
        ("stage", progress.stage.value),
        ("payment state", progress.payment_state),
        (
            "reason",
            progress.reason_code and f"{progress.reason_code}: {progress.detail}",
        ),
        ("receipt checks", checks),
        ("next check", format_time(progress.next_check_at)),
        ("run", progress.run_id and f"{progress.run_id} ({progress.run_state})"),
    ]
