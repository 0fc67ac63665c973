-- Paying, cancelling and expiring an order move its reservations and its
-- coupon by `order_id`; without these indexes each of them scanned the
-- reservations and every coupon ever issued (300,000 after one firehose
-- run), inside the write transaction. Only rows that belong to an order
-- are indexed.
create index reservations_order on reservations (order_id) where order_id is not null;
create index coupons_order on coupons (order_id) where order_id is not null;
