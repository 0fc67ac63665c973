-- The PostgreSQL stock gate's counters (gate::PgStockGate), for deployments
-- without Redis. They are a fast copy of each module's own counts, loaded
-- from the module through a StockLoader and repaired by reconciliation.
--
-- No foreign keys: every take inserts or updates a holding, and a key check
-- on the pool's row would make that one row hot again. The gate changes a
-- pool's three tables together, in one transaction.

-- A pool known to the gate; per_user_limit null is no per-user limit.
create table stock_pools (
    pool_id text primary key,
    per_user_limit bigint check (per_user_limit >= 0)
);

-- A pool's stock spread over several rows, so that concurrent takes lock
-- different rows. capacity null is unlimited; a row serves a take while
-- taken < capacity. The stock is the sum of the capacities.
create table stock_pool_shards (
    pool_id text not null,
    shard integer not null,
    capacity bigint check (capacity >= 0),
    taken bigint not null check (taken >= 0),
    primary key (pool_id, shard)
);

-- Units each user holds, kept only for pools with a per-user limit.
create table stock_holdings (
    pool_id text not null,
    user_id text not null,
    held bigint not null check (held > 0),
    primary key (pool_id, user_id)
);
