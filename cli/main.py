"""Entry point of the ``x402-rails`` command."""

from pathlib import Path
from typing import Annotated

import typer

from cli import demo, dev
from cli.conformance import run_conformance
from cli.operator import register as register_operator

app = typer.Typer(
    help="x402 payment rails: Cloak x402 payments on Starknet, one workflow each.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """x402 payment rails: Cloak x402 payments on Starknet, one workflow each."""


@app.command()
def conformance(
    path: Annotated[
        Path,
        typer.Argument(help="A Cloak x402 v1 vectors file (JSON).", show_default=False),
    ],
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list passing cases.")
    ] = False,
) -> None:
    """Check this build against protocol test vectors; exit 1 if any case fails."""
    raise typer.Exit(run_conformance(path, verbose=verbose))


dev.register(app)
demo.register(app)
register_operator(app)
