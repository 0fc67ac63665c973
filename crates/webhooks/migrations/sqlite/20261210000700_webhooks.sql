-- The webhooks module owns these tables; no other module reads or writes them.

-- An integrator's endpoint. The secrets are kept as given: every delivery is
-- signed with them. `previous_secret` signs beside `secret` until
-- `previous_secret_expires_at` after a rotation.
create table webhook_endpoints (
    id blob primary key,
    url text not null,
    event_types text not null,
    description text,
    disabled boolean not null default false,
    secret text not null,
    previous_secret text,
    previous_secret_expires_at text,
    created_at text not null,
    updated_at text not null
);

-- One event for one endpoint: the durable queue. Its id is the
-- `webhook-id` of every attempt. `source_id` (the bus message it came from)
-- makes an event heard twice one message per endpoint.
create table webhook_messages (
    id blob primary key,
    endpoint_id blob not null references webhook_endpoints (id) on delete cascade,
    source_id blob not null,
    event_type text not null,
    body text not null,
    state text not null,
    attempts integer not null default 0,
    window_started_at text not null,
    next_attempt_at text not null,
    created_at text not null,
    updated_at text not null,
    unique (endpoint_id, source_id)
);
create index webhook_messages_due on webhook_messages (state, next_attempt_at);

-- One try at a message: the delivery log.
create table webhook_attempts (
    id blob primary key,
    message_id blob not null references webhook_messages (id) on delete cascade,
    endpoint_id blob not null,
    event_type text not null,
    attempt integer not null,
    status_code integer,
    duration_ms integer not null,
    error text,
    response_excerpt text,
    attempted_at text not null,
    next_retry_at text,
    gave_up boolean not null default false
);
create index webhook_attempts_endpoint on webhook_attempts (endpoint_id, id);
