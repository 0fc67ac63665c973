-- Orders placed from reservations, their items and history, and the coupon
-- an unpaid order has set aside.

-- An order. `status` and `payment_status` move only by conditional
-- updates from the values they were read in; `expires_at` is the end of
-- the payment window, to which its reservations' holds were extended.
create table orders (
    id uuid primary key,
    user_id uuid not null,
    status text not null,
    subtotal bigint not null check (subtotal >= 0),
    discount bigint not null check (discount >= 0),
    total bigint not null check (total >= 0),
    currency text not null,
    coupon_id uuid,
    coupon_code text,
    payment_provider text,
    payment_status text not null,
    payment_key text,
    payment_code text,
    approved_at timestamptz,
    attempts bigint not null default 0,
    refund_amount bigint,
    refund_status text,
    refunded_at timestamptz,
    expires_at timestamptz not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create index orders_user on orders (user_id, id);
create index orders_status on orders (status, expires_at);

create table order_items (
    order_id uuid not null references orders (id),
    reservation_id uuid not null unique references reservations (id),
    product_id uuid not null,
    quantity bigint not null check (quantity >= 1),
    unit_price bigint not null,
    amount bigint not null,
    primary key (order_id, reservation_id)
);

-- What happened to an order, in order: PLACED, PAID, FAILED, EXPIRED, ...
create table order_history (
    order_id uuid not null references orders (id),
    seq bigint not null,
    event text not null,
    detail text,
    at timestamptz not null,
    primary key (order_id, seq)
);

-- The order a coupon is set aside for: one unpaid order at a time.
alter table coupons add column order_id uuid;
