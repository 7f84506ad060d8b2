"""Operator commands: payments and their workflows, runs, API keys and agents."""

import typer

from cli.marketplace import agents_app, api_keys_app, runs_app
from cli.payments import payments_app


def register(app: typer.Typer) -> None:
    """Add the operator command groups to ``app``: payments, runs, api-keys, agents."""
    app.add_typer(payments_app, name="payments")
    app.add_typer(runs_app, name="runs")
    app.add_typer(api_keys_app, name="api-keys")
    app.add_typer(agents_app, name="agents")
