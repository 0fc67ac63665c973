-- The webhooks module owns these tables; no other module reads or writes them.

-- An integrator's endpoint. The secrets are kept as given: every delivery is
-- signed with them. `previous_secret` signs beside `secret` until
-- `previous_secret_expires_at` after a rotation.
create table webhook_endpoints (
    id uuid primary key,
    url text not null,
    event_types text not null,
    description text,
    disabled boolean not null default false,
    secret text not null,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    created_at timestamptz not null,
    updated_at timestamptz not null
);

-- One event for one endpoint: the durable queue. Its id is the
-- `webhook-id` of every attempt. `source_id` (the bus message it came from)
-- makes an event heard twice one message per endpoint.
create table webhook_messages (
    id uuid primary key,
    endpoint_id uuid not null references webhook_endpoints (id) on delete cascade,
    source_id uuid not null,
    event_type text not null,
    body text not null,
    state text not null,
    attempts bigint not null default 0,
    window_started_at timestamptz not null,
    next_attempt_at timestamptz not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    unique (endpoint_id, source_id)
);
create index webhook_messages_due on webhook_messages (state, next_attempt_at);

-- One try at a message: the delivery log.
create table webhook_attempts (
    id uuid primary key,
    message_id uuid not null references webhook_messages (id) on delete cascade,
    endpoint_id uuid not null,
    event_type text not null,
    attempt bigint not null,
    status_code bigint,
    duration_ms bigint not null,
    error text,
    response_excerpt text,
    attempted_at timestamptz not null,
    next_retry_at timestamptz,
    gave_up boolean not null default false
);
create index webhook_attempts_endpoint on webhook_attempts (endpoint_id, id);
