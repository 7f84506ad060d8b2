"""Shared fixtures: real Postgres, real Temporal servers, a local Starknet node, an executor."""

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.temporal",
    "tests.harness.starknet_node",
    "tests.harness.executor",
]
