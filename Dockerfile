# syntax=docker/dockerfile:1
# One image for both processes of the payment rails: the API (default command)
# and the Temporal worker (`x402-worker`). See docker-compose.yml for both.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# .dockerignore admits only what the wheel is built from.
COPY . .
# Wheels of the project and of every dependency (starknet-py is published as an
# sdist only, so it is built here once instead of in the runtime image).
RUN pip wheel --wheel-dir /wheels .


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged uid so volume and secret file permissions are predictable.
RUN groupadd --system --gid 10001 x402 \
    && useradd --system --uid 10001 --gid x402 --create-home --home-dir /home/x402 x402

# Installed from the build stage's wheels without copying them into a layer.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels x402-rails

USER x402
# No source tree here: the API and the worker import the installed packages.
WORKDIR /home/x402

# 8000: the API. 9464: the worker's Prometheus port (X402_METRICS_PORT).
EXPOSE 8000 9464

# The API's liveness; the worker, which serves no /healthz, gets its own check
# in docker-compose.yml. The slim image has no curl, hence Python.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# X402_TRUSTED_PROXIES, not uvicorn, decides whose X-Forwarded-For to believe;
# h11 needs room for X402_MAX_HEADER_BYTES (32 KiB) of x402 headers.
CMD ["uvicorn", "--factory", "api.main:create_app", "--host", "0.0.0.0", "--port", "8000", \
     "--no-proxy-headers", "--h11-max-incomplete-event-size", "98304"]
