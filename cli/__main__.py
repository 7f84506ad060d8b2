"""Allows ``python -m cli`` as well as the ``x402-rails`` console script."""

from cli.main import app

app(prog_name="x402-rails")
