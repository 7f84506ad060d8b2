"""Clients of the marketplace API: pay a run's 402 challenge, then wait for the run.

``AsyncX402Client`` is for asyncio code, ``X402Client`` for blocking code. The
blocking one runs on ``httpx.Client`` rather than ``asyncio.run`` around the
async one: ``asyncio.run`` fails inside a running loop (notebooks, async
frameworks), and a fresh loop per call could not keep an ``AsyncClient``'s
pooled connections, which belong to the loop that opened them. Both share every
request and answer rule (``client.wire``) and log line (``_ClientBase``); only
the I/O differs, as between httpx's own two clients.
"""

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Self

import httpx

from client.errors import RunTimeout, TransportError
from client.proof import ProofProvider, SyncProofProvider, build_payment
from client.wire import (
    DEFAULT_HEADER_BUDGET,
    Endpoints,
    PaidRequest,
    challenge_request_body,
    is_finished,
    is_payment_required,
    paid_run_request,
    payment_pair,
    read_answer,
    read_challenge,
    read_model,
    read_run,
    retry_delay,
    run_body,
)
from protocol.models import Challenge, PaymentPayload, SettleResponse, VerifyDecision

logger = logging.getLogger(__name__)

Run = dict[str, Any]


class _ClientBase:
    """Settings and log lines the two clients share."""

    def __init__(
        self, base_url: str, api_key: str, poll_interval: float, header_budget: int
    ) -> None:
        self._endpoints = Endpoints.under(base_url)
        self._auth = {"Authorization": f"Bearer {api_key}"}
        self._poll_interval = poll_interval
        self._header_budget = header_budget

    def _challenge_received(self, response: httpx.Response) -> Challenge:
        challenge = read_challenge(response)
        logger.info(
            "payment required challenge_id=%s min_amount=%s token=%s",
            challenge.challenge_id,
            challenge.min_amount,
            challenge.token,
        )
        return challenge

    def _paid_request(
        self,
        body: dict[str, Any],
        challenge: Challenge,
        payment: PaymentPayload,
        idempotency_key: str | None,
    ) -> PaidRequest:
        request = paid_run_request(
            body,
            challenge,
            payment,
            idempotency_key=idempotency_key,
            header_budget=self._header_budget,
        )
        logger.info(
            "payment presented payment_ref=%s carrier=%s",
            payment.payment_ref,
            request.carrier,
        )
        return request

    def _run_accepted(
        self, response: httpx.Response, payment_ref: str | None
    ) -> tuple[Run, str | None]:
        run = read_run(response, read_answer(response, payment_ref=payment_ref))
        payment_ref = payment_ref or run.get("payment_ref")
        logger.info(
            "run accepted run_id=%s status=%s payment_ref=%s",
            run["run_id"],
            run["status"],
            payment_ref,
        )
        return run, payment_ref

    def _poll_delay(self, run: Run, deadline: float, wait_seconds: float) -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunTimeout(run["run_id"], run["status"], wait_seconds)
        return min(self._poll_interval, remaining)

    def _run_finished(self, run: Run, payment_ref: str | None) -> Run:
        logger.info(
            "run finished run_id=%s status=%s payment_ref=%s",
            run["run_id"],
            run["status"],
            payment_ref,
        )
        return run

    def _settle_answered(
        self, response: httpx.Response, payment: PaymentPayload
    ) -> SettleResponse:
        ref = payment.payment_ref
        answer = read_answer(response, payment_ref=ref)
        settled = read_model(SettleResponse, answer, response)
        logger.info(
            "payment settle answered payment_ref=%s status=%s", ref, settled.status
        )
        return settled

    def _retry_delay(
        self, response: httpx.Response, url: str, attempt: int
    ) -> float | None:
        # Only GETs are retried: they change nothing, so a retry cannot pay twice.
        delay = retry_delay(response, attempt)
        if delay is not None:
            logger.warning(
                "request retried status=%s url=%s attempt=%s delay=%s",
                response.status_code,
                url,
                attempt + 1,
                delay,
            )
        return delay


class AsyncX402Client(_ClientBase):
    """Paid runs and x402 payments of one API, for asyncio callers.

    ``http`` is an ``httpx.AsyncClient`` of the caller's, used as it is (its own
    timeout applies) and left open by ``aclose``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        proof_provider: ProofProvider,
        *,
        timeout: float = 10.0,
        poll_interval: float = 1.0,
        http: httpx.AsyncClient | None = None,
        header_budget: int = DEFAULT_HEADER_BUDGET,
    ) -> None:
        super().__init__(base_url, api_key, poll_interval, header_budget)
        self._proof_provider = proof_provider
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, unless it was the caller's."""
        if self._owns_http:
            await self._http.aclose()

    async def create_run(
        self,
        agent_id: str,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait_seconds: float = 60.0,
    ) -> Run:
        """Start a run, pay its 402 challenge, and return the run once it finished.

        ``idempotency_key`` goes on the paid request only: the unpaid one before
        it has other headers or body, so the API would refuse or replay a shared
        key. The wait of ``wait_seconds`` starts when the API accepts the run;
        RunTimeout then carries the run id, to read the run later with
        ``get_run``. A refused payment raises PaymentRefused and is not paid again.

        Known limitation: a run that needs no payment is created by the unpaid
        request, which carries no key, so retrying such a call may create a
        second run. A key derived from the caller's on the unpaid request would
        close this gap, once the API agrees on how it is derived.
        """
        url = self._endpoints.runs()
        body = run_body(agent_id, action, params)
        response = await self._send("POST", url, body, self._auth)
        payment_ref = None
        if is_payment_required(response):
            challenge = self._challenge_received(response)
            payment = build_payment(
                challenge, await self._proof_provider.pay(challenge)
            )
            payment_ref = payment.payment_ref
            request = self._paid_request(body, challenge, payment, idempotency_key)
            headers = self._auth | request.headers
            response = await self._send("POST", url, request.body, headers)

        run, payment_ref = self._run_accepted(response, payment_ref)
        deadline = time.monotonic() + wait_seconds
        while not is_finished(run):
            await asyncio.sleep(self._poll_delay(run, deadline, wait_seconds))
            run = await self.get_run(run["run_id"])
            logger.debug("run polled run_id=%s status=%s", run["run_id"], run["status"])
        return self._run_finished(run, payment_ref)

    async def get_run(self, run_id: str) -> Run:
        """The run as the API has it now."""
        response = await self._get(self._endpoints.run(run_id), self._auth)
        return read_run(response, read_answer(response))

    async def request_challenge(
        self,
        recipient: str,
        *,
        token: str | None = None,
        min_amount: str | None = None,
        network: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_seconds: int | None = None,
    ) -> Challenge:
        """A challenge the API signs for these terms; unset terms take its defaults."""
        url = self._endpoints.payments("challenge")
        body = challenge_request_body(
            recipient,
            token=token,
            min_amount=min_amount,
            network=network,
            context=context,
            ttl_seconds=ttl_seconds,
        )
        response = await self._send("POST", url, body)
        return read_model(Challenge, read_answer(response).get("challenge"), response)

    async def verify(
        self, challenge: Challenge, payment: PaymentPayload
    ) -> VerifyDecision:
        """The API's verify decision on this payment; verify records nothing."""
        url = self._endpoints.payments("verify")
        response = await self._send("POST", url, payment_pair(challenge, payment))
        answer = read_answer(response, payment_ref=payment.payment_ref)
        return read_model(VerifyDecision, answer, response)

    async def settle(
        self, challenge: Challenge, payment: PaymentPayload
    ) -> SettleResponse:
        """Settle the payment; the same payload presented again gets the same answer."""
        url = self._endpoints.payments("settle")
        response = await self._send("POST", url, payment_pair(challenge, payment))
        return self._settle_answered(response, payment)

    async def payment_status(self, payment_ref: str) -> dict[str, Any]:
        """Where the payment stands (pending, settled, rejected) and at which stage."""
        response = await self._get(self._endpoints.payment(payment_ref))
        return read_answer(response, payment_ref=payment_ref)

    async def _get(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        attempt = 0
        while True:
            response = await self._send("GET", url, None, headers)
            delay = self._retry_delay(response, url, attempt)
            if delay is None:
                return response
            attempt += 1
            await asyncio.sleep(delay)

    async def _send(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return await self._http.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise TransportError(f"{method} {url}: {error!r}") from error


class X402Client(_ClientBase):
    """Paid runs and x402 payments of one API, for blocking callers.

    The same methods as AsyncX402Client; ``proof_provider.pay`` blocks until it
    has paid. ``http`` is an ``httpx.Client`` of the caller's, left open by
    ``close``.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        proof_provider: SyncProofProvider,
        *,
        timeout: float = 10.0,
        poll_interval: float = 1.0,
        http: httpx.Client | None = None,
        header_budget: int = DEFAULT_HEADER_BUDGET,
    ) -> None:
        super().__init__(base_url, api_key, poll_interval, header_budget)
        self._proof_provider = proof_provider
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP client, unless it was the caller's."""
        if self._owns_http:
            self._http.close()

    def create_run(
        self,
        agent_id: str,
        action: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        wait_seconds: float = 60.0,
    ) -> Run:
        """Start a run, pay its 402 challenge, and return the run once it finished.

        As ``AsyncX402Client.create_run``: the Idempotency-Key goes on the paid
        request only, and the wait starts when the API accepts the run.
        """
        url = self._endpoints.runs()
        body = run_body(agent_id, action, params)
        response = self._send("POST", url, body, self._auth)
        payment_ref = None
        if is_payment_required(response):
            challenge = self._challenge_received(response)
            payment = build_payment(challenge, self._proof_provider.pay(challenge))
            payment_ref = payment.payment_ref
            request = self._paid_request(body, challenge, payment, idempotency_key)
            headers = self._auth | request.headers
            response = self._send("POST", url, request.body, headers)

        run, payment_ref = self._run_accepted(response, payment_ref)
        deadline = time.monotonic() + wait_seconds
        while not is_finished(run):
            time.sleep(self._poll_delay(run, deadline, wait_seconds))
            run = self.get_run(run["run_id"])
            logger.debug("run polled run_id=%s status=%s", run["run_id"], run["status"])
        return self._run_finished(run, payment_ref)

    def get_run(self, run_id: str) -> Run:
        """The run as the API has it now."""
        response = self._get(self._endpoints.run(run_id), self._auth)
        return read_run(response, read_answer(response))

    def request_challenge(
        self,
        recipient: str,
        *,
        token: str | None = None,
        min_amount: str | None = None,
        network: str | None = None,
        context: Mapping[str, Any] | None = None,
        ttl_seconds: int | None = None,
    ) -> Challenge:
        """A challenge the API signs for these terms; unset terms take its defaults."""
        url = self._endpoints.payments("challenge")
        body = challenge_request_body(
            recipient,
            token=token,
            min_amount=min_amount,
            network=network,
            context=context,
            ttl_seconds=ttl_seconds,
        )
        response = self._send("POST", url, body)
        return read_model(Challenge, read_answer(response).get("challenge"), response)

    def verify(self, challenge: Challenge, payment: PaymentPayload) -> VerifyDecision:
        """The API's verify decision on this payment; verify records nothing."""
        url = self._endpoints.payments("verify")
        response = self._send("POST", url, payment_pair(challenge, payment))
        answer = read_answer(response, payment_ref=payment.payment_ref)
        return read_model(VerifyDecision, answer, response)

    def settle(self, challenge: Challenge, payment: PaymentPayload) -> SettleResponse:
        """Settle the payment; the same payload presented again gets the same answer."""
        url = self._endpoints.payments("settle")
        response = self._send("POST", url, payment_pair(challenge, payment))
        return self._settle_answered(response, payment)

    def payment_status(self, payment_ref: str) -> dict[str, Any]:
        """Where the payment stands (pending, settled, rejected) and at which stage."""
        response = self._get(self._endpoints.payment(payment_ref))
        return read_answer(response, payment_ref=payment_ref)

    def _get(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        attempt = 0
        while True:
            response = self._send("GET", url, None, headers)
            delay = self._retry_delay(response, url, attempt)
            if delay is None:
                return response
            attempt += 1
            time.sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        try:
            return self._http.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as error:
            raise TransportError(f"{method} {url}: {error!r}") from error
