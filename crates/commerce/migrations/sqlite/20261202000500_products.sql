-- Products on sale, and the reservations that hold their units.

-- A product. `stock` null is unlimited; units taken are the quantities of
-- its HELD, ORDERED and SOLD reservations, never a counter on this row.
create table products (
    id blob primary key,
    name text not null,
    kind text not null,
    price integer not null check (price >= 0),
    currency text not null,
    stock integer check (stock >= 0),
    per_user_limit integer check (per_user_limit >= 1),
    hold_seconds integer not null check (hold_seconds >= 1),
    sale_starts_at text not null,
    sale_ends_at text not null,
    valid_from text,
    valid_until text,
    created_at text not null,
    updated_at text not null
);
create index products_kind on products (kind, id);

-- A hold of `quantity` units of one product for one user. Its status only
-- moves by a conditional update from the status it was read in, so each
-- unit is given back at most once.
create table reservations (
    id blob primary key,
    product_id blob not null references products (id),
    user_id blob not null,
    quantity integer not null check (quantity >= 1),
    status text not null,
    expires_at text not null,
    order_id blob,
    created_at text not null,
    updated_at text not null
);
create index reservations_product on reservations (product_id, status);
create index reservations_user on reservations (user_id, id);
create index reservations_expiry on reservations (status, expires_at);
