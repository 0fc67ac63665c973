-- Tickets issued when an order is paid: one per unit, each with an
-- unguessable code, redeemed once at check-in.
create table tickets (
    id blob primary key,
    order_id blob not null references orders (id),
    product_id blob not null,
    user_id blob not null,
    code text not null unique,
    status text not null,
    valid_from text,
    valid_until text,
    checked_in_at text,
    created_at text not null
);
create index tickets_user on tickets (user_id, id);
create index tickets_order on tickets (order_id);

-- Every scan's answer by the scanner's nonce: a scanner retrying over a
-- bad network gets its first answer again.
create table check_ins (
    nonce text primary key,
    code text not null,
    answer text not null,
    at text not null
);
