-- Identity owns these tables; no other module reads or writes them.
create table users (
    id blob primary key,
    email text not null,
    password_hash text not null,
    roles text not null,
    referral_code text not null,
    -- Bumped by a role change or a revoked login: older access tokens stop working.
    token_version integer not null default 0,
    created_at text not null,
    updated_at text not null,
    constraint users_email_key unique (email),
    constraint users_referral_code_key unique (referral_code)
);

-- Who invited whom, and when.
create table referrals (
    referred_id blob primary key references users (id),
    referrer_id blob not null references users (id),
    created_at text not null
);
create index referrals_referrer on referrals (referrer_id, created_at);

-- One row per login; the refresh tokens of a login form a rotation family.
create table login_sessions (
    id blob primary key,
    user_id blob not null references users (id),
    created_at text not null,
    revoked_at text
);
create index login_sessions_user on login_sessions (user_id, created_at);

create table refresh_tokens (
    token_hash blob primary key,
    session_id blob not null references login_sessions (id),
    expires_at text not null,
    rotated_at text,
    created_at text not null
);
create index refresh_tokens_session on refresh_tokens (session_id);

-- The access-token signing key, generated on first start unless configured.
create table signing_keys (
    kid text primary key,
    private_pkcs8 blob not null,
    created_at text not null
);
