-- Rewards owns these tables; no other module reads or writes them.
create table events (
    id blob primary key,
    name text not null,
    description text not null,
    status text not null,
    starts_at text not null,
    ends_at text not null,
    created_at text not null,
    updated_at text not null
);
create index events_status on events (status, id);

-- The catalogue. `spec` is the reward's type and that type's fields as JSON.
create table rewards (
    id blob primary key,
    name text not null,
    type text not null,
    spec text not null,
    created_at text not null
);

-- A reward attached to an event. `quantity` null = unlimited, and then
-- `remaining` is null too; `condition` is JSON text, or null for none.
create table event_rewards (
    id blob primary key,
    event_id blob not null references events (id),
    reward_id blob not null references rewards (id),
    condition text,
    auto_resolve integer not null default 0,
    quantity integer,
    remaining integer,
    per_user_limit integer not null default 1,
    created_at text not null,
    updated_at text not null
);
create index event_rewards_event on event_rewards (event_id, id);
