-- Rewards owns these tables; no other module reads or writes them.
create table events (
    id uuid primary key,
    name text not null,
    description text not null,
    status text not null,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index events_status on events (status, id);

-- The catalogue. `spec` is the reward's type and that type's fields as JSON.
create table rewards (
    id uuid primary key,
    name text not null,
    type text not null,
    spec text not null,
    created_at timestamptz not null
);

-- A reward attached to an event. `quantity` null = unlimited, and then
-- `remaining` is null too; `condition` is JSON text, or null for none.
create table event_rewards (
    id uuid primary key,
    event_id uuid not null references events (id),
    reward_id uuid not null references rewards (id),
    condition text,
    auto_resolve boolean not null default false,
    quantity bigint,
    remaining bigint,
    per_user_limit bigint not null default 1,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index event_rewards_event on event_rewards (event_id, id);
