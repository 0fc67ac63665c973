-- Idempotency-Key records: one per user and key, kept for 24 hours.
create table idempotency_keys (
    user_id uuid not null,
    idem_key text not null,
    fingerprint bytea not null,
    state text not null check (state in ('IN_PROGRESS', 'DONE')),
    response_status integer,
    content_type text,
    location text,
    body bytea,
    created_at timestamptz not null,
    primary key (user_id, idem_key)
);
create index idempotency_keys_created_at on idempotency_keys (created_at);
