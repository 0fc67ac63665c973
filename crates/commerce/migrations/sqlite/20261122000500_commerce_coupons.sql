-- Commerce owns these tables; no other module reads or writes them.

-- A coupon campaign. Nothing here changes when a coupon is issued: the
-- campaign's issued count is the count of its public coupons, so issuing
-- never updates a shared row (see docs/adr/0010).
create table coupon_campaigns (
    id blob primary key,
    name text not null,
    discount_kind text not null,
    discount_value integer not null,
    discount_currency text,
    total_quantity integer not null check (total_quantity >= 1),
    per_user_limit integer not null check (per_user_limit >= 1),
    issue_starts_at text not null,
    issue_ends_at text not null,
    valid_until text not null,
    created_at text not null
);

-- One row per coupon: inserting it is the claim. A public issue takes the
-- user's next `ordinal`, and the insert itself refuses one above the
-- campaign's per_user_limit; the unique (campaign_id, user_id, ordinal) stops
-- two inserts taking the same one. So a row over the per-user limit is
-- impossible even if the stock gate were wrong. A reward grant has no
-- ordinal but a unique `grant_id`, so a replayed grant is one coupon. Every
-- coupon is exactly one of the two.
create table coupons (
    id blob primary key,
    code text not null unique,
    campaign_id blob not null references coupon_campaigns (id),
    user_id blob not null,
    ordinal integer check (ordinal >= 1),
    grant_id blob unique,
    status text not null,
    issued_at text not null,
    expires_at text not null,
    updated_at text not null,
    check ((ordinal is null) <> (grant_id is null))
);
create unique index coupons_user_ordinal on coupons (campaign_id, user_id, ordinal);
create index coupons_user on coupons (user_id, id);
