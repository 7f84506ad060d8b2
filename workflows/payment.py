"""Payment workflow: challenge, verify, settle, finality wait, run, receipt."""

import re
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from protocol.amounts import parse_amount
    from protocol.models import (
        ReasonCode,
        SettleResponse,
        VerifyDecision,
        payment_ref_for,
    )
    from protocol.receipt import PaymentReceipt
    from protocol.signals import Signal
    from protocol.timestamps import format_timestamp
    from protocol.verify import check_terms
    from workflows import search_attributes as attrs
    from workflows.answers import (
        answer_from_record,
        final_stage,
        payment_state_of,
        replay_signal_for,
        run_state_after,
    )
    from workflows.execution import RunExecution
    from workflows.models import (
        ChallengeCheckInput,
        CheckRecord,
        ClaimInput,
        ClaimResult,
        FinalityWait,
        PayAndRunRequest,
        PaymentInput,
        PaymentOutcome,
        PaymentProgress,
        PaymentTransition,
        ReceiptCheck,
        ReceiptCheckInput,
        ReceiptOutcome,
        ReplayCheckInput,
        RunOutcome,
        SettleRequest,
        SignalRecord,
        Stage,
    )
    from workflows.steps import check_receipt, run_local

# A long wait starts a fresh run before its history grows large.
MAX_CHECKS_PER_RUN = 100
LEGACY_FINALITY = "LEGACY_UNVERIFIED"
UNVERIFIED_FINALITY = "UNVERIFIED"
_TX_HASH = re.compile(r"0[xX][0-9a-fA-F]{1,64}")


@workflow.defn(name="PaymentWorkflow")
class PaymentWorkflow:
    """One payment, id ``pay_<replayKey>``; every presentation reaches this one.

    The replay key makes every retry safe: the workflow id, the Postgres claim
    and each write are keyed by it, and the run's execution by its run id.
    """

    @workflow.init
    def __init__(self, start: PaymentInput) -> None:
        self._input = start
        self._ref = payment_ref_for(start.payment.replay_key)
        self._stage = Stage.CHALLENGE
        self._decision: SettleResponse | None = None
        self._answered = False
        self._checks: list[CheckRecord] = []
        self._check_count = 0
        self._checks_this_run = 0
        self._next_check_at: datetime | None = None
        self._tx_hash: str | None = None
        self._retry = False
        self._cancel_reason: str | None = None
        self._execution = (
            RunExecution(start.run, start.policy, state="pending_payment")
            if start.run is not None
            else None
        )
        self._wait: FinalityWait | None = start.resume

    @workflow.run
    async def run(self, start: PaymentInput) -> PaymentOutcome:
        self._show_identity()

        # 1–3. challenge, verify, settle: the answer a client is waiting for.
        if self._wait is None:
            self._decision = await self._decide()
        else:
            self._resume(self._wait)

        # 4. finality wait: durable timers until the transaction is final enough.
        if self._decision.status == "pending":
            await self._wait_for_finality()

        # 5. run execution: only a settled payment ever reaches the executor.
        run = await self._execute_run()

        # 6. receipt: signed at settlement and already in the decision; let any
        # update still answering finish before the workflow closes.
        self._set_stage(final_stage(self._decision, run))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PaymentOutcome(decision=self._decision, run=run)

    @workflow.update
    async def settle(self, request: SettleRequest) -> SettleResponse:
        """The settle decision for this payment, as soon as it is known."""
        return await self._answer(request.payment == self._input.payment)

    @settle.validator
    def validate_settle(self, request: SettleRequest) -> None:
        self._validate(request.payment.replay_key)

    @workflow.update
    async def pay_and_run(self, request: PayAndRunRequest) -> SettleResponse:
        """The settle decision for a paid run; the run executes once it settles."""
        run = self._input.run
        same = request.payment == self._input.payment
        return await self._answer(
            same and run is not None and run.run_id == request.run_id
        )

    @pay_and_run.validator
    def validate_pay_and_run(self, request: PayAndRunRequest) -> None:
        self._validate(request.payment.replay_key)
        if not request.run_id:
            raise ValueError("run_id is required")

    @workflow.signal
    def retry(self) -> None:
        """Check the receipt now, or run a failed execution again."""
        workflow.logger.info("retry requested payment_ref=%s", self._ref)
        # Before the run starts, a retry is about the receipt; only once it runs
        # may a retry re-run a failed execution.
        if self._stage is Stage.RUN_EXECUTION and self._execution is not None:
            self._execution.retry_requested = True
        else:
            self._retry = True

    @workflow.signal
    def cancel(self, reason: str) -> None:
        """Stop waiting: a pending payment is rejected, its run cancelled."""
        workflow.logger.info(
            "cancel requested payment_ref=%s reason=%s", self._ref, reason
        )
        self._cancel_reason = reason or "cancelled by operator"
        if self._execution is not None:
            self._execution.cancel_reason = self._cancel_reason

    @workflow.query
    def status(self) -> PaymentProgress:
        """Stage, payment and run state, and the receipt checks so far."""
        execution = self._execution
        return PaymentProgress(
            payment_ref=self._ref,
            stage=self._stage,
            payment_state=payment_state_of(self._decision),
            reason_code=self._decision.reason_code if self._decision else None,
            detail=self._decision.detail if self._decision else "",
            settlement_tx_hash=self._tx_hash,
            run_id=execution.order.run_id if execution else None,
            run_state=execution.state if execution else None,
            checks=self._checks,
            check_count=self._check_count,
            next_check_at=self._next_check_at,
            decision=self._decision,
            execution=execution.result if execution else None,
        )

    async def _decide(self) -> SettleResponse:
        """Stages 1–3; every way out is recorded before it is answered."""
        challenge, payment = self._input.challenge, self._input.payment

        # 1. challenge: a payment seen before answers as it did (the reference
        # checks replay first); a new one needs a challenge we signed, unexpired.
        self._set_stage(Stage.CHALLENGE)
        prior = await self._local(
            "read_replay",
            ReplayCheckInput(payment=payment),
            ClaimResult,
            "look up the replay key",
        )
        if prior.outcome == "conflict":
            return await self._refuse(ReasonCode.REPLAY_DETECTED, prior.detail)
        if prior.outcome == "repeat" and prior.payment_state != "pending":
            return self._replay(prior)
        # A pending claim passed this check when it was made; its challenge may
        # have expired since, while the money is already on its way.
        if prior.outcome == "unseen":
            checked = await self._local(
                "check_challenge",
                ChallengeCheckInput(challenge=challenge, payment=payment),
                VerifyDecision,
                "check the challenge's signature and expiry",
            )
            if not checked.accepted:
                return await self._refuse(checked.reason_code, checked.detail)

        # 2. verify: the payment against its challenge, in the reference's order.
        self._set_stage(Stage.VERIFY)
        verdict = check_terms(
            challenge,
            payment,
            legacy_proof_compat=self._input.policy.legacy_proof_compat,
        )
        if not verdict.accepted:
            return await self._refuse(verdict.reason_code, verdict.detail)
        tx_hash = verdict.settlement_tx_hash
        if tx_hash is None and not self._input.policy.legacy_settlement_compat:
            return await self._refuse(
                ReasonCode.INVALID_PAYLOAD, "payment.proof names no settlementTxHash"
            )
        if tx_hash is not None and not _TX_HASH.fullmatch(tx_hash):
            return await self._refuse(
                ReasonCode.INVALID_PAYLOAD, "proof settlementTxHash is not 0x hex"
            )

        # 3. settle: claim replay key, challenge and transaction, then the receipt.
        self._set_stage(Stage.SETTLE)
        claim = await self._local(
            "claim_payment",
            ClaimInput(
                challenge=challenge,
                payment=payment,
                settlement_tx_hash=tx_hash,
                run_id=self._execution.order.run_id if self._execution else None,
                legacy_proof=verdict.legacy_proof,
            ),
            ClaimResult,
            "claim the replay key, challenge and settlement transaction",
        )
        if claim.outcome == "conflict":
            return await self._refuse(ReasonCode.REPLAY_DETECTED, claim.detail)
        if claim.payment_state != "pending":
            return self._replay(claim)
        self._tx_hash = claim.settlement_tx_hash
        self._show_tx_hash()

        if self._tx_hash is None:
            return await self._settle(LEGACY_FINALITY, {"legacy_settlement": True})
        if not self._input.policy.verify_onchain:
            return await self._settle(UNVERIFIED_FINALITY, {"onchain_check": "off"})
        check = await self._check_receipt(first=True)
        if check.outcome is ReceiptOutcome.PENDING:
            await self._record_signal(Signal.SETTLE_PENDING)
            return self._pending(check)
        return await self._conclude(check)

    async def _wait_for_finality(self) -> None:
        """Stage 4: re-check on growing intervals until final, failed or cancelled."""
        self._set_stage(Stage.FINALITY_WAIT)
        policy = self._input.policy
        wait = self._wait or self._new_wait()
        deadline = wait.started_at + timedelta(seconds=policy.timeout_seconds)
        interval = wait.next_interval_seconds

        while self._decision.status == "pending":
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                await self._time_out(policy.timeout_seconds)
                return
            if self._checks_this_run >= MAX_CHECKS_PER_RUN or (
                workflow.info().is_continue_as_new_suggested()
            ):
                await self._continue_as_new(wait, interval)

            delay = min(interval, remaining)
            await self._sleep_until_check(delay)
            if self._cancel_reason is not None:
                await self._reject_cancelled()
                return
            if self._retry:
                self._retry = False
                await self._record_signal("operator_retry")

            check = await self._check_receipt(first=False)
            interval = min(interval * policy.backoff, policy.max_interval_seconds)
            if check.outcome is not ReceiptOutcome.PENDING:
                self._decision = await self._conclude(check, wait)
        self._next_check_at = None

    async def _execute_run(self) -> RunOutcome | None:
        """Stage 5 for a settled payment; a rejected one leaves its run as it is."""
        execution = self._execution
        if execution is None:
            return None
        if self._decision.status != "settled":
            return execution.outcome()

        self._set_stage(Stage.RUN_EXECUTION)
        return await execution.run()

    async def _answer(self, same_payment: bool) -> SettleResponse:
        """The current decision; a different payload under this key is a replay."""
        if not same_payment:
            await self._record_signal(
                Signal.SETTLE_REJECTED, ReasonCode.REPLAY_DETECTED
            )
            return SettleResponse(
                status="rejected",
                payment_ref=self._ref,
                reason_code=ReasonCode.REPLAY_DETECTED,
                detail="replayKey already used by a different payment",
            )

        await workflow.wait_condition(lambda: self._decision is not None)
        if self._answered:
            await self._record_signal(replay_signal_for(self._decision))
        self._answered = True
        return self._decision

    async def _check_receipt(self, *, first: bool) -> ReceiptCheck:
        """One receipt check; an RPC outage is a pending answer, never settled."""
        policy, challenge = self._input.policy, self._input.challenge
        check_input = ReceiptCheckInput(
            payment_ref=self._ref,
            settlement_tx_hash=self._tx_hash or "",
            network=challenge.network,
            token=challenge.token,
            recipient=challenge.recipient,
            min_amount=str(parse_amount(challenge.min_amount)),
            required_finality=policy.required_finality,
        )
        summary = f"receipt check {self._check_count + 1} of {self._tx_hash}"
        check = await check_receipt(check_input, first=first, summary=summary)
        self._note_check(check)
        return check

    async def _conclude(
        self, check: ReceiptCheck, wait: FinalityWait | None = None
    ) -> SettleResponse:
        """A final receipt: settled with a signed receipt, or failed."""
        waited = (workflow.now() - wait.started_at).total_seconds() if wait else None
        evidence = check.model_dump(mode="json", exclude={"outcome"})
        if check.outcome is ReceiptOutcome.SETTLED:
            return await self._settle(check.finality or "", evidence, waited)
        return await self._fail(ReasonCode.SETTLEMENT_FAILED, check.detail)

    async def _settle(
        self, finality: str, evidence: dict, waited: float | None = None
    ) -> SettleResponse:
        """Sign the receipt, then record the payment settled and its run queued."""
        self._set_stage(Stage.RECEIPT)
        challenge, payment = self._input.challenge, self._input.payment
        tx_ref = self._tx_hash or f"legacy:{self._ref}"
        receipt = await self._local(
            "sign_receipt",
            PaymentReceipt(
                payment_ref=self._ref,
                replay_key=payment.replay_key,
                challenge_id=challenge.challenge_id,
                settlement_tx_hash=tx_ref,
                amount=payment.amount,
                token=payment.token,
                recipient=challenge.recipient,
                network=challenge.network,
                finality=finality,
                settled_at=format_timestamp(workflow.now()),
            ),
            dict,
            "sign the payment receipt",
        )
        await self._record(
            state="settled",
            signal=Signal.SETTLE_SETTLED,
            settlement_tx_hash=self._tx_hash,
            finality=finality,
            receipt=receipt,
            evidence=evidence,
            waited_seconds=waited,
        )
        workflow.logger.info(
            "finality reached payment_ref=%s finality=%s", self._ref, finality
        )
        return SettleResponse(
            status="settled", payment_ref=self._ref, tx_hash=tx_ref, receipt=receipt
        )

    async def _fail(self, reason: ReasonCode, detail: str) -> SettleResponse:
        """A claimed payment that can never settle: rejected, its run failed."""
        workflow.logger.error(
            "payment failed payment_ref=%s reason=%s detail=%s",
            self._ref,
            reason,
            detail,
        )
        await self._record(
            state="rejected",
            signal=Signal.SETTLE_FAILED,
            reason_code=reason,
            detail=detail,
        )
        return SettleResponse(
            status="failed",
            payment_ref=self._ref,
            tx_hash=self._tx_hash,
            reason_code=reason,
            detail=detail,
        )

    async def _refuse(self, reason: ReasonCode | None, detail: str) -> SettleResponse:
        """A payload refused before anything was claimed: only the signal is kept."""
        reason = reason or ReasonCode.INVALID_PAYLOAD
        workflow.logger.info(
            "payment refused payment_ref=%s reason=%s detail=%s",
            self._ref,
            reason,
            detail,
        )
        await self._record_signal(Signal.SETTLE_REJECTED, reason)
        if self._execution is not None:
            # The run was created for this payment only: it can never be paid.
            await self._execution.fail_unpaid(f"{reason}: {detail}")
        return SettleResponse(
            status="rejected", payment_ref=self._ref, reason_code=reason, detail=detail
        )

    async def _time_out(self, timeout_seconds: float) -> None:
        detail = (
            f"not final after {timeout_seconds:g} s (X402_SETTLEMENT_TIMEOUT_SECONDS)"
        )
        self._decision = await self._fail(ReasonCode.TIMEOUT, detail)

    async def _reject_cancelled(self) -> None:
        detail = f"cancelled by operator: {self._cancel_reason}"
        await self._record_signal("operator_cancel", reason=self._cancel_reason)
        await self._record(
            state="rejected",
            reason_code=ReasonCode.SETTLEMENT_FAILED,
            detail=detail,
            cancelled=True,
        )
        self._decision = SettleResponse(
            status="rejected",
            payment_ref=self._ref,
            tx_hash=self._tx_hash,
            reason_code=ReasonCode.SETTLEMENT_FAILED,
            detail=detail,
        )

    async def _sleep_until_check(self, delay: float) -> None:
        """A durable timer that a retry or cancel signal cuts short."""
        self._next_check_at = workflow.now() + timedelta(seconds=delay)
        try:
            await workflow.wait_condition(
                lambda: self._retry or self._cancel_reason is not None,
                timeout=timedelta(seconds=delay),
                timeout_summary=f"wait {delay:g} s for finality of {self._tx_hash}",
            )
        except TimeoutError:
            pass

    async def _continue_as_new(self, wait: FinalityWait, interval: float) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        resume = wait.model_copy(
            update={
                "decision": self._decision,
                "next_interval_seconds": interval,
                "check_count": self._check_count,
                "claim_settlement_tx_hash": self._tx_hash,
                "answered": self._answered,
            }
        )
        workflow.continue_as_new(self._input.model_copy(update={"resume": resume}))

    def _new_wait(self) -> FinalityWait:
        return FinalityWait(
            decision=self._decision,
            started_at=workflow.now(),
            next_interval_seconds=self._input.policy.first_interval_seconds,
        )

    def _resume(self, wait: FinalityWait) -> None:
        self._decision = wait.decision
        self._tx_hash = wait.claim_settlement_tx_hash
        self._check_count = wait.check_count
        self._answered = wait.answered

    def _replay(self, earlier: ClaimResult) -> SettleResponse:
        """The answer an earlier, closed run of this workflow id recorded.

        Its run was executed (or not) back then; this run only answers.
        """
        self._answered = True
        self._execution = None
        self._tx_hash = earlier.settlement_tx_hash
        return answer_from_record(self._ref, earlier)

    def _pending(self, check: ReceiptCheck) -> SettleResponse:
        return SettleResponse(
            status="pending",
            payment_ref=self._ref,
            tx_hash=self._tx_hash,
            detail=check.detail,
        )

    def _note_check(self, check: ReceiptCheck) -> None:
        self._check_count += 1
        self._checks_this_run += 1
        record = CheckRecord(
            at=workflow.now(),
            outcome=check.outcome,
            finality=check.finality,
            detail=check.detail,
        )
        # The query shows the latest checks; the count says how many there were.
        self._checks = [*self._checks[-19:], record]
        workflow.logger.debug(
            "receipt checked payment_ref=%s outcome=%s", self._ref, check.outcome
        )

    async def _record(self, **change: object) -> None:
        run_id = self._execution.order.run_id if self._execution else None
        await self._local(
            "record_payment",
            PaymentTransition(
                replay_key=self._input.payment.replay_key, run_id=run_id, **change
            ),
            None,
            f"record payment {change['state']}",
        )
        if self._execution is not None:
            self._execution.state = run_state_after(change)

    async def _record_signal(self, signal: str, reason: str | None = None) -> None:
        run_id = self._execution.order.run_id if self._execution else None
        await self._local(
            "record_signal",
            SignalRecord(
                signal=signal, payment_ref=self._ref, run_id=run_id, reason=reason
            ),
            None,
            f"record {signal}",
        )

    async def _local(
        self, activity: str, arg: object, result_type: type | None, summary: str
    ) -> Any:
        return await run_local(activity, arg, result_type, summary)

    def _validate(self, replay_key: str) -> None:
        if replay_key != self._input.payment.replay_key:
            raise ValueError(
                f"payment.replayKey {replay_key!r} does not belong to {self._ref}"
            )

    def _set_stage(self, stage: Stage) -> None:
        self._stage = stage
        workflow.upsert_search_attributes([attrs.X402_STATE.value_set(stage.value)])
        workflow.set_current_details(f"{self._ref}: {stage.value}")

    def _show_identity(self) -> None:
        updates = [attrs.X402_PAYMENT_REF.value_set(self._ref)]
        run = self._input.run
        if run is not None:
            updates.append(attrs.X402_RUN_ID.value_set(run.run_id))
            updates.append(attrs.X402_AGENT_ID.value_set(run.agent_id))
        workflow.upsert_search_attributes(updates)

    def _show_tx_hash(self) -> None:
        if self._tx_hash is not None:
            workflow.upsert_search_attributes(
                [attrs.X402_SETTLEMENT_TX_HASH.value_set(self._tx_hash)]
            )
