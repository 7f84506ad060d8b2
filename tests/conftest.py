"""Shared fixtures: real Postgres, Temporal servers, a Starknet node, an executor."""

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.temporal",
    "tests.harness.starknet_node",
    "tests.harness.executor",
]
