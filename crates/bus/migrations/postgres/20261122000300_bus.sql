-- The outbox: messages written in the same transaction as the change they
-- announce, waiting for the relay.
create table outbox_messages (
    id uuid primary key,
    topic text not null,
    version integer not null,
    payload text not null,
    created_at timestamptz not null,
    published_at timestamptz
);
create index outbox_messages_unpublished on outbox_messages (id) where published_at is null;

-- The inbox: one delivery per message and subscriber. The key dedupes
-- repeated publications; state, attempts and the next attempt drive retries.
create table inbox_deliveries (
    id uuid primary key,
    message_id uuid not null,
    subscriber text not null,
    topic text not null,
    version integer not null,
    payload text not null,
    occurred_at timestamptz not null,
    state text not null check (state in ('PENDING', 'DONE', 'DEAD')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null,
    last_error text,
    updated_at timestamptz not null,
    constraint inbox_deliveries_message_subscriber_key unique (message_id, subscriber)
);
create index inbox_deliveries_due on inbox_deliveries (next_attempt_at) where state = 'PENDING';
create index inbox_deliveries_dead on inbox_deliveries (id) where state = 'DEAD';
