-- Leases of the PostgreSQL stock gate (gate::PgStockGate): a unit taken by
-- a claim whose durable write has not settled yet. A take under a lease
-- writes its row in the same statement as the take; the claim deletes it
-- when its write commits (settle) or with the give-back when it fails. A
-- row left behind by a process that died is found by age and resolved
-- against the module's own tables (gate::sweep).
create table stock_leases (
    pool_id text not null,
    claim_id text not null,
    user_id text not null,
    quantity bigint not null check (quantity > 0),
    taken_at timestamptz not null default now(),
    primary key (pool_id, claim_id)
);

create index stock_leases_by_age on stock_leases (taken_at);
