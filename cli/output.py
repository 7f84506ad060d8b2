"""What operator commands print: rich tables for people, plain JSON for scripts."""

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from store.records import EventRecord

# Token amounts leave as strings, as the x402 wire spells them: a JSON number
# above 2**53 loses digits in most parsers.
AMOUNT_FIELDS = frozenset({"amount", "price_amount"})

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")
]


def stdout() -> Console:
    """A console on the current stdout, which a test runner may have replaced."""
    return Console(highlight=False, soft_wrap=False)


def stderr() -> Console:
    """A console on the current stderr, for errors and warnings."""
    # One line per message, unbroken, so it can be grepped from a log.
    return Console(stderr=True, highlight=False, soft_wrap=True)


def jsonable(model: BaseModel) -> dict[str, Any]:
    """A record as JSON-ready data, with amounts as decimal strings."""
    data = model.model_dump(mode="json")
    for name in AMOUNT_FIELDS & data.keys():
        if isinstance(data[name], int):
            data[name] = str(data[name])
    return data


def print_json(data: Any) -> None:
    """The only thing a ``--json`` command writes to stdout."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def print_error(message: str) -> None:
    stderr().print(Text.assemble(("error: ", "bold red"), message))


def print_warning(message: str) -> None:
    stderr().print(Text.assemble(("warning: ", "bold yellow"), message))


def print_done(message: str) -> None:
    """One line saying what a command changed."""
    stdout().print(Text.assemble(("ok ", "bold green"), message))


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[str | Text]],
    *,
    empty: str = "none",
) -> None:
    """A table of ``rows``; a table without rows prints ``empty`` instead."""
    table = Table(title=title, title_justify="left", header_style="bold")
    # The first column is the id to copy into the next command: never broken.
    for index, column in enumerate(columns):
        table.add_column(column, overflow="fold", no_wrap=index == 0)
    for row in rows:
        table.add_row(*row)
    if table.row_count == 0:
        stdout().print(Text(f"{title}: {empty}", style="dim"))
        return
    stdout().print(table)


def print_fields(title: str, fields: Iterable[tuple[str, Any]]) -> None:
    """A two-column table of name and value; None values are left out."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in fields:
        if isinstance(value, dict | list):
            value = json.dumps(value, sort_keys=True)
        if value is not None:
            table.add_row(name, value if isinstance(value, Text) else str(value))
    stdout().print(table)


def state_text(state: str) -> Text:
    """A payment, run or workflow state, coloured by how it ended."""
    style = {
        "settled": "green",
        "completed": "green",
        "running": "cyan",
        "pending": "yellow",
        "pending_payment": "yellow",
        "queued": "yellow",
        "rejected": "red",
        "failed": "red",
        "cancelled": "red",
    }.get(state.lower(), "")
    return Text(state, style=style)


def shorten(value: str, keep: int = 8) -> str:
    """A long address as its head and tail, for tables; ``--json`` has it whole."""
    if len(value) <= 2 * keep + 3:
        return value
    return f"{value[:keep]}…{value[-keep + 2 :]}"


def format_time(moment: datetime | None) -> str | None:
    """A UTC timestamp to the second, e.g. ``2026-03-01 12:00:05Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def format_age(moment: datetime, now: datetime | None = None) -> str:
    """How long ago ``moment`` was, in its largest whole unit: ``42s``, ``3h``."""
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def print_events(events: list[EventRecord]) -> None:
    """The audit trail of a payment or a run, oldest first."""
    print_table(
        "Events",
        ["id", "time", "signal", "kind", "reason"],
        (
            [
                str(event.event_id),
                format_time(event.created_at) or "",
                event.signal,
                event.kind,
                event.reason or "",
            ]
            for event in events
        ),
    )
