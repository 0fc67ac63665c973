-- The PostgreSQL stock gate's take as one function call (gate::PgStockGate):
-- one round trip per take instead of a transaction of several statements.

-- Takes p_quantity units of p_pool for p_user, all or nothing, in one round
-- trip: the PostgreSQL twin of the Redis take script. Answers 'ABSENT' (the
-- gate does not have the pool), 'SOLD_OUT', 'LIMIT_REACHED' or 'TAKEN'.
-- The holding is raised first, then units are taken from shard rows: with
-- p_waiting false only from rows no other transaction holds, starting at
-- shard p_start, never waiting; with p_waiting true from rows in ascending
-- shard order, waiting for each. When the rows cannot serve the take it
-- raises SQLSTATE GB001 (not waiting: try again waiting) or GB002 (waiting:
-- sold out), so that the statement's changes roll back. A row a transaction
-- waited for stays locked even when it turns out full; waiting only in
-- shard order, and holdings before shards, keeps takes from deadlocking.
create function stock_gate_take(
    p_pool text, p_user text, p_quantity bigint, p_start integer, p_waiting boolean
) returns text language plpgsql as $$
declare
    v_limit bigint;
    v_unlimited boolean;
    v_room bigint;
    v_wanted bigint := p_quantity;
    v_shard integer := -1;
    v_took bigint;
begin
    select per_user_limit into v_limit from stock_pools where pool_id = p_pool;
    if not found then
        return 'ABSENT';
    end if;
    select bool_or(capacity is null), coalesce(sum(greatest(capacity - taken, 0)), 0)
        into v_unlimited, v_room
        from stock_pool_shards where pool_id = p_pool;
    if not v_unlimited and v_room < p_quantity then
        return 'SOLD_OUT';
    end if;
    if v_limit is not null then
        if p_quantity > v_limit then
            return 'LIMIT_REACHED';
        end if;
        insert into stock_holdings (pool_id, user_id, held) values (p_pool, p_user, p_quantity)
            on conflict (pool_id, user_id) do update set held = stock_holdings.held + excluded.held
            where stock_holdings.held + excluded.held <= v_limit;
        if not found then
            return 'LIMIT_REACHED';
        end if;
    end if;
    while v_wanted > 0 loop
        if p_waiting then
            update stock_pool_shards s set taken = s.taken + pick.amount
                from (select shard, coalesce(least(capacity - taken, v_wanted), v_wanted) as amount
                      from stock_pool_shards
                      where pool_id = p_pool and shard > v_shard
                        and (capacity is null or taken < capacity)
                      order by shard limit 1 for update) pick
                where s.pool_id = p_pool and s.shard = pick.shard
                returning pick.shard, pick.amount into v_shard, v_took;
        else
            update stock_pool_shards s set taken = s.taken + pick.amount
                from (select shard, coalesce(least(capacity - taken, v_wanted), v_wanted) as amount
                      from stock_pool_shards
                      where pool_id = p_pool and (capacity is null or taken < capacity)
                      order by shard < p_start, shard limit 1 for update skip locked) pick
                where s.pool_id = p_pool and s.shard = pick.shard
                returning pick.amount into v_took;
        end if;
        if not found then
            if p_waiting then
                raise exception 'stock pool % sold out', p_pool using errcode = 'GB002';
            end if;
            raise exception 'stock pool % busy', p_pool using errcode = 'GB001';
        end if;
        v_wanted := v_wanted - v_took;
    end loop;
    return 'TAKEN';
end
$$;
