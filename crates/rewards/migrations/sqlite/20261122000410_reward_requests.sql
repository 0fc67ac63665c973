-- Reward requests, the wallet ledger and the facts conditions read. Rewards
-- owns these tables; identity's facts arrive as messages, never by reading
-- identity's tables.

-- Every attempt on an event reward, successful or not. No foreign key to
-- event_rewards: the history outlives a removed event reward.
create table reward_requests (
    id blob primary key,
    user_id blob not null,
    event_id blob not null,
    event_reward_id blob not null,
    reward_id blob not null,
    status text not null,
    reason_code text,
    reason text,
    -- Whether this request holds one unit of a limited quantity.
    holds_unit integer not null default 0,
    created_at text not null,
    decided_at text,
    decided_by blob
);
create index reward_requests_holder on reward_requests (event_reward_id, user_id, status);
create index reward_requests_user on reward_requests (user_id, id);
create index reward_requests_status on reward_requests (status, id);
create index reward_requests_event on reward_requests (event_id, id);
create index reward_requests_created on reward_requests (created_at);

-- The wallet: append-only, one entry per granted request (the unique request
-- id makes a grant happen once). Exactly one of points / item / badge is set.
create table wallet_entries (
    id blob primary key,
    user_id blob not null,
    request_id blob not null unique,
    points integer,
    item_id text,
    item_quantity integer,
    badge_id text,
    created_at text not null
);
create index wallet_entries_user on wallet_entries (user_id);

-- UTC days a user logged in (from identity.user_logged_in).
create table login_days (
    user_id blob not null,
    day text not null,
    primary key (user_id, day)
);
create index login_days_day on login_days (day);

-- Sign-ups (from identity.user_signed_up), with the referrer if any.
create table sign_ups (
    user_id blob primary key,
    referred_by blob,
    signed_up_at text not null
);
create index sign_ups_referrer on sign_ups (referred_by, signed_up_at);
create index sign_ups_day on sign_ups (signed_up_at);

-- Custom metrics from POST /activity; a repeated source_id counts once.
create table activities (
    id blob primary key,
    user_id blob not null,
    metric text not null,
    value double precision not null,
    occurred_at text not null,
    source_id text unique,
    recorded_at text not null
);
create index activities_user_metric on activities (user_id, metric, occurred_at);
