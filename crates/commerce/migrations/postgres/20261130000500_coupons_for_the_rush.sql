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
--   are never deleted. The key locked the campaign row (for key share) for
--   every coupon — one hot row again, under the rush.
alter table coupons drop constraint coupons_campaign_id_fkey;
alter table coupons drop constraint coupons_grant_id_key;
drop index coupons_user_ordinal;
drop index coupons_user;
create unique index coupons_user_campaign_ordinal on coupons (user_id, campaign_id, ordinal);
create index coupons_campaign on coupons (campaign_id);
create unique index coupons_grant on coupons (grant_id) where grant_id is not null;
