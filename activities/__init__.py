"""Activities: every I/O step of a payment: Postgres, Starknet, executor, secrets."""
