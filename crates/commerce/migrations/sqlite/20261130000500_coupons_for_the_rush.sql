-- Fewer index entries per claim (ADR 0013). Each claim used to write three
-- randomly placed index entries, an entry in an index of nulls and a
-- foreign-key check; now one random entry.
--
-- * One index led by the user replaces two: the unique (user_id, campaign_id,
--   ordinal) is still the last guard against a row over the per-user limit,
--   and it serves the ordinal lookup of an issue and `GET /coupons/mine` (a
--   user's coupons, sorted by id in the query). Campaign-led reads (the
--   stock loader's per-user counts) get a plain index on campaign_id, whose
--   inserts land beside each other.
-- * grant_id is unique through a partial index: public coupons (no grant)
--   add no entry.
-- * No foreign key to coupon_campaigns: every insert joins the campaign row
--   itself (a coupon of an unknown campaign is never written) and campaigns
--   are never deleted. On PostgreSQL the key locked the campaign row for
--   every coupon — one hot row again, under the rush.
--
-- SQLite cannot drop a column's constraints, so the table is rebuilt.
create table coupons_rebuilt (
    id blob primary key,
    code text not null unique,
    campaign_id blob not null,
    user_id blob not null,
    ordinal integer check (ordinal >= 1),
    grant_id blob,
    status text not null,
    issued_at text not null,
    expires_at text not null,
    updated_at text not null,
    check ((ordinal is null) <> (grant_id is null))
);
insert into coupons_rebuilt (id, code, campaign_id, user_id, ordinal, grant_id, status,
                             issued_at, expires_at, updated_at)
select id, code, campaign_id, user_id, ordinal, grant_id, status, issued_at, expires_at, updated_at
from coupons;
drop table coupons;
alter table coupons_rebuilt rename to coupons;
create unique index coupons_user_campaign_ordinal on coupons (user_id, campaign_id, ordinal);
create index coupons_campaign on coupons (campaign_id);
create unique index coupons_grant on coupons (grant_id) where grant_id is not null;
