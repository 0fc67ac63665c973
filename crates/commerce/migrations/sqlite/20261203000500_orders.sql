-- Orders placed from reservations, their items and history, and the coupon
-- an unpaid order has set aside.

-- An order. `status` and `payment_status` move only by conditional
-- updates from the values they were read in; `expires_at` is the end of
-- the payment window, to which its reservations' holds were extended.
create table orders (
    id blob primary key,
    user_id blob not null,
    status text not null,
    subtotal integer not null check (subtotal >= 0),
    discount integer not null check (discount >= 0),
    total integer not null check (total >= 0),
    currency text not null,
    coupon_id blob,
    coupon_code text,
    payment_provider text,
    payment_status text not null,
    payment_key text,
    payment_code text,
    approved_at text,
    attempts integer not null default 0,
    refund_amount integer,
    refund_status text,
    refunded_at text,
    expires_at text not null,
    created_at text not null,
    updated_at text not null
);
create index orders_user on orders (user_id, id);
create index orders_status on orders (status, expires_at);

create table order_items (
    order_id blob not null references orders (id),
    reservation_id blob not null unique references reservations (id),
    product_id blob not null,
    quantity integer not null check (quantity >= 1),
    unit_price integer not null,
    amount integer not null,
    primary key (order_id, reservation_id)
);

-- What happened to an order, in order: PLACED, PAID, FAILED, EXPIRED, ...
create table order_history (
    order_id blob not null references orders (id),
    seq integer not null,
    event text not null,
    detail text,
    at text not null,
    primary key (order_id, seq)
);

-- The order a coupon is set aside for: one unpaid order at a time.
alter table coupons add column order_id blob;
