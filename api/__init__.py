"""HTTP API of the payment rails: a thin FastAPI layer over Temporal and Postgres."""
