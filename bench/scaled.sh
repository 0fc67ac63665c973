#!/usr/bin/env bash
# Coupon rush in the scaled-out configuration (PostgreSQL + the Redis stock
# gate), against the single-hot-row PostgreSQL baseline measured in the same
# run: `UPDATE … SET remaining = remaining - 1 WHERE remaining > 0`, one
# durable transaction per unit, from pgbench with 64 clients (near the rush's
# concurrency) and with 4 (the hot row's best on this machine). Then the same
# firehose on PostgreSQL alone (`--stock-gate postgres`): the stock on one
# row (the hot row inside Stampede) and on the default 16 rows. Beside the
# firehose on PostgreSQL + Redis: a ticket sale (fake provider) and a park
# line rush on the Redis line store.
# Usage: bench/scaled.sh [CONNECTIONS] [SECONDS]   (release build first:
#   cargo build --release -p server -p loadtest)
# Needs PostgreSQL and Redis on this machine (STAMPEDE_BENCH_PG, _REDIS).
# The firehose is bounded at 400,000 requests (FIREHOSE_REQUESTS), more than
# it sells in the duration, so it runs the whole window the CPU is sampled in.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-256}; D=${2:-10}
PORT=${STAMPEDE_BENCH_PORT:-18565}
PG=${STAMPEDE_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${STAMPEDE_BENCH_REDIS:-redis://127.0.0.1:6379}
RUN="bench_$(date +%s)_$$"
DIR=$(mktemp -d)
SERVER=
SCHEMAS=()
stop_server() {
    if [ -n "$SERVER" ]; then
        kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
        SERVER=
    fi
}
cleanup() {
    stop_server
    for schema in "${SCHEMAS[@]}"; do
        psql "$PG" -qc "drop schema if exists $schema cascade" >/dev/null 2>&1 || true
    done
    redis-cli -u "$REDIS" --scan --pattern "$RUN*" | xargs -r redis-cli -u "$REDIS" del >/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT

export PGOPTIONS='--client-min-messages=warning'
hot_row() {
    local clients=$1 schema="${RUN}_hot"
    SCHEMAS+=("$schema")
    psql "$PG" -qc "create schema if not exists $schema;
        drop table if exists $schema.hot_row;
        create table $schema.hot_row (id int primary key, remaining bigint not null);
        insert into $schema.hot_row values (1, 1000000000)"
    echo "update hot_row set remaining = remaining - 1 where id = 1 and remaining > 0;" > "$DIR/hot_row.sql"
    local tps
    tps=$(PGOPTIONS="-c search_path=$schema -c synchronous_commit=on" pgbench -n -c "$clients" -j 2 -T "$D" \
        -f "$DIR/hot_row.sql" "$PG" 2>/dev/null | awk '/^tps/ {print $3}')
    printf 'hot row   %9.0f transactions/s (pgbench, %s clients, one durable UPDATE each)\n' "$tps" "$clients"
}

# serve NAME GATE [SETTING=VALUE…]: a server on a fresh schema (and Redis
# prefix) of its own, with the given stock gate and extra settings.
serve() {
    local name=$1 gate=$2 schema="${RUN}_$1"
    shift 2
    stop_server
    SCHEMAS+=("$schema")
    psql "$PG" -qc "create schema $schema"
    env "$@" STAMPEDE_RATE_LIMIT=off STAMPEDE_LOG_LEVEL=warn STAMPEDE_REDIS_PREFIX="$schema" \
        target/release/stampede serve --test-users --listen "127.0.0.1:$PORT" \
        --database-url "$PG?options=-c%20search_path%3D$schema" \
        --stock-gate "$gate" --redis-url "$REDIS" 2>"$DIR/server-$name.log" &
    SERVER=$!
    for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
}

export STAMPEDE_ADMIN_EMAIL=bench@example.com STAMPEDE_ADMIN_PASSWORD='bench password 1'
. "$(dirname "$0")/lib.sh"
disk_probe "$DIR" # the disk under PostgreSQL's data directory too: this machine has one
FIREHOSE=(--connections "$C" --requests "${FIREHOSE_REQUESTS:-400000}" --duration "$D" --users 1000)

hot_row 64
hot_row 4
echo "# PostgreSQL + Redis gate"
serve redis redis STAMPEDE_FAKE_PAYMENTS=on STAMPEDE_LINE_STORE=redis
run healthz  --connections "$C" --requests 2000000 --duration "$D"
run drop     --connections "$C" --requests 2000000 --duration "$D" --users 1000
run firehose "${FIREHOSE[@]}"
run tickets  "${FIREHOSE[@]}"
run line     --connections "$C" --requests 2000000 --duration "$D" --users "${LINE_GUESTS:-5000}" --call-batch 100
run healthz  --connections "$C" --requests 2000000 --duration "$D"
echo "# PostgreSQL alone, the stock on one row"
serve pg1 postgres STAMPEDE_STOCK_GATE_SHARDS=1
run firehose "${FIREHOSE[@]}"
echo "# PostgreSQL alone, the stock on 16 rows"
serve pg16 postgres STAMPEDE_STOCK_GATE_SHARDS=16
run firehose "${FIREHOSE[@]}"
stop_server
hot_row 64
