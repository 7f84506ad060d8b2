-- Payments, agents, API keys, runs, idempotency keys and the payment event log.
-- Must match: the row models in store/records.py and the enums they use.

-- One row per replay key; a challenge and a settlement transaction back at most
-- one payment, so one transaction can never pay twice.
create table x402_payments (
    replay_key text not null,
    payment_ref text not null generated always as ('pay_' || replay_key) stored,
    challenge_id text not null,
    settlement_tx_hash text,
    status text not null default 'pending',
    reason_code text,
    reason_detail text,
    payer text not null,
    recipient text not null,
    token text not null,
    amount numeric(78, 0) not null,
    network text not null,
    proof_digest text not null,
    finality text,
    receipt jsonb,
    evidence jsonb,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    settled_at timestamptz,
    constraint x402_payments_pkey primary key (replay_key),
    constraint x402_payments_payment_ref_key unique (payment_ref),
    constraint x402_payments_challenge_id_key unique (challenge_id),
    constraint x402_payments_settlement_tx_hash_key unique (settlement_tx_hash),
    constraint x402_payments_status_check
        check (status in ('pending', 'settled', 'rejected')),
    -- Must match: store.records.normalize_tx_hash (lower case, no leading zeros).
    constraint x402_payments_settlement_tx_hash_normalized
        check (settlement_tx_hash ~ '^0x(0|[1-9a-f][0-9a-f]{0,63})$'),
    constraint x402_payments_proof_digest_sha256
        check (proof_digest ~ '^[0-9a-f]{64}$'),
    constraint x402_payments_amount_u256 check (
        amount between 0
        and 115792089237316195423570985008687907853269984665640564039457584007913129639935
    ),
    constraint x402_payments_settled_at_iff_settled
        check ((status = 'settled') = (settled_at is not null)),
    constraint x402_payments_rejected_has_reason
        check (status <> 'rejected' or reason_code is not null)
);
create index x402_payments_status_created_idx on x402_payments (status, created_at);

create table agents (
    agent_id text primary key,
    agent_type text not null constraint agents_agent_type_check
        check (agent_type in ('staking_steward', 'treasury_dispatcher', 'swap_runner')),
    service_wallet text not null,
    price_amount numeric(78, 0) not null constraint agents_price_amount_check
        check (price_amount >= 0),
    price_token text not null,
    tongo_recipient text,
    network text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Only the sha256 of a key is kept; the plaintext is shown once, at creation.
create table api_keys (
    key_id text primary key,
    key_hash text not null constraint api_keys_key_hash_key unique
        constraint api_keys_key_hash_sha256 check (key_hash ~ '^[0-9a-f]{64}$'),
    wallet text not null,
    label text,
    is_admin boolean not null default false,
    created_at timestamptz not null default now(),
    revoked_at timestamptz
);
create index api_keys_wallet_idx on api_keys (wallet);

-- payment_ref is a plain nullable foreign key: a run is created before its
-- payment is claimed, and attach_payment links the two once the claim exists.
create table agent_runs (
    run_id text primary key,
    agent_id text not null constraint agent_runs_agent_id_fkey
        references agents (agent_id),
    operator_wallet text not null,
    action text not null,
    params jsonb not null default '{}',
    billable boolean not null,
    status text not null constraint agent_runs_status_check check (status in (
        'pending_payment', 'queued', 'running', 'completed', 'failed', 'cancelled'
    )),
    payment_ref text constraint agent_runs_payment_ref_fkey
        references x402_payments (payment_ref)
        -- One payment pays for one run; the unique index also serves lookups.
        constraint agent_runs_payment_ref_key unique,
    payment_evidence jsonb,
    execution_tx_hashes jsonb not null default '[]'
        constraint agent_runs_execution_tx_hashes_array
        check (jsonb_typeof(execution_tx_hashes) = 'array'),
    result jsonb,
    error text,
    idempotency_key text,
    request_hash text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz
);
create unique index agent_runs_idempotency_key_key
    on agent_runs (operator_wallet, idempotency_key)
    where idempotency_key is not null;
create index agent_runs_operator_created_idx
    on agent_runs (operator_wallet, created_at desc, run_id desc);
create index agent_runs_status_idx on agent_runs (status);

-- Reserved before any work of POST /runs, so a retry can never start a second run.
create table idempotency_keys (
    actor text not null,
    key text not null,
    request_hash text not null,
    state text not null default 'in_flight' constraint idempotency_keys_state_check
        check (state in ('in_flight', 'done')),
    response_status integer,
    response_body jsonb,
    run_id text constraint idempotency_keys_run_id_fkey references agent_runs (run_id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint idempotency_keys_pkey primary key (actor, key),
    constraint idempotency_keys_done_has_response
        check (state = 'in_flight' or response_status is not null)
);

-- The audit trail and the cluster-wide signal counts. `kind` is derived from the
-- signal, so the twelve protocol signals stay countable apart from operator
-- signals and the state transitions the store logs itself.
-- Must match: protocol.signals.Signal, store.records.OperatorSignal and
-- store.records.TRANSITION_SIGNALS.
create table x402_payment_events (
    event_id bigint generated always as identity primary key,
    signal text not null constraint x402_payment_events_signal_check check (signal in (
        'challenge_issued', 'verify_accepted', 'verify_rejected',
        'settle_settled', 'settle_pending', 'settle_failed', 'settle_rejected',
        'replay_pending', 'replay_settled', 'replay_rejected',
        'paywall_required', 'paywall_paid',
        'operator_retry', 'operator_cancel',
        'payment_pending', 'payment_settled', 'payment_rejected',
        'run_pending_payment', 'run_queued', 'run_running',
        'run_completed', 'run_failed', 'run_cancelled'
    )),
    kind text not null generated always as (case
        when signal in ('operator_retry', 'operator_cancel') then 'operator'
        when signal like 'payment\_%' or signal like 'run\_%' then 'transition'
        else 'signal'
    end) stored,
    payment_ref text,
    run_id text,
    reason text,
    detail jsonb,
    created_at timestamptz not null default now()
);
create index x402_payment_events_signal_created_idx
    on x402_payment_events (signal, created_at);
create index x402_payment_events_payment_ref_idx
    on x402_payment_events (payment_ref) where payment_ref is not null;
create index x402_payment_events_run_id_idx
    on x402_payment_events (run_id) where run_id is not null;

-- Append-only for real: an audit trail that can be edited proves nothing.
create function x402_payment_events_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'x402_payment_events is append-only: % refused', tg_op
        using errcode = 'restrict_violation';
end;
$$;
create trigger x402_payment_events_append_only
    before update or delete on x402_payment_events
    for each row execute function x402_payment_events_refuse_change();
create trigger x402_payment_events_no_truncate
    before truncate on x402_payment_events
    for each statement execute function x402_payment_events_refuse_change();
