-- The waiting lists of sold-out products: who waits for how many units, in
-- the order they joined (ids are time-ordered), and the offers made when
-- units came back.
create table waiting_list_entries (
    id blob primary key,
    product_id blob not null references products (id),
    user_id blob not null,
    quantity integer not null check (quantity >= 1),
    status text not null,
    joined_at text not null,
    offered_at text,
    reservation_id blob references reservations (id),
    offer_expires_at text,
    updated_at text not null
);
-- One live entry per user and product: a second join is ALREADY_WAITING.
create unique index waiting_list_entries_live on waiting_list_entries (product_id, user_id)
    where status in ('WAITING', 'OFFERED');
-- The queue in order (rank, the first entry that fits, a public hold's check).
create index waiting_list_entries_queue on waiting_list_entries (product_id, status, id);
-- Every entry of a product in order, for the readers' list.
create index waiting_list_entries_product on waiting_list_entries (product_id, id);
-- Offers whose reservation was ordered or gave its units back.
create index waiting_list_entries_offered on waiting_list_entries (status, reservation_id);
