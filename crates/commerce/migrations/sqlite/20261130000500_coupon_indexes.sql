-- One index led by the user replaces two: the unique (user_id, campaign_id,
-- ordinal) is still the last guard against a row over the per-user limit,
-- and it serves the ordinal lookup of an issue and `GET /coupons/mine` (a
-- user's coupons, sorted by id in the query). Campaign-led reads (the stock
-- loader's per-user counts) get a plain index on campaign_id, whose inserts
-- land beside each other. Each claim now writes one randomly placed index
-- entry instead of three (ADR 0013).
drop index coupons_user_ordinal;
drop index coupons_user;
create unique index coupons_user_campaign_ordinal on coupons (user_id, campaign_id, ordinal);
create index coupons_campaign on coupons (campaign_id);
