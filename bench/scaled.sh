#!/usr/bin/env bash
# Coupon rush in the scaled-out configuration (PostgreSQL + the Redis stock
# gate), against the single-hot-row PostgreSQL baseline measured in the same
# run: `UPDATE … SET remaining = remaining - 1 WHERE remaining > 0`, one
# durable transaction per unit, from pgbench with 64 clients (near the rush's
# concurrency) and with 4 (the hot row's best on this machine).
# Usage: bench/scaled.sh [CONNECTIONS] [SECONDS]   (release build first:
#   cargo build --release -p server -p loadtest)
# Needs PostgreSQL and Redis on this machine (STAMPEDE_BENCH_PG, _REDIS).
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-256}; D=${2:-10}
PORT=${STAMPEDE_BENCH_PORT:-18565}
PG=${STAMPEDE_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}
REDIS=${STAMPEDE_BENCH_REDIS:-redis://127.0.0.1:6379}
SCHEMA="bench_$(date +%s)_$$"
DIR=$(mktemp -d)
psql "$PG" -qc "create schema $SCHEMA"
cleanup() {
    kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    psql "$PG" -qc "drop schema if exists $SCHEMA cascade" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
SERVER=
trap cleanup EXIT

export PGOPTIONS='--client-min-messages=warning'
hot_row() {
    local clients=$1
    psql "$PG?options=-c%20search_path%3D$SCHEMA" -qc \
        "drop table if exists hot_row; create table hot_row (id int primary key, remaining bigint not null);
         insert into hot_row values (1, 1000000000)" 2> >(grep -v NOTICE >&2)
    echo "update hot_row set remaining = remaining - 1 where id = 1 and remaining > 0;" > "$DIR/hot_row.sql"
    local tps
    tps=$(PGOPTIONS="-c search_path=$SCHEMA -c synchronous_commit=on" pgbench -n -c "$clients" -j 2 -T "$D" \
        -f "$DIR/hot_row.sql" "$PG" 2>/dev/null | awk '/^tps/ {print $3}')
    printf 'hot row   %9.0f transactions/s (pgbench, %s clients, one durable UPDATE each)\n' "$tps" "$clients"
}

hot_row 64
hot_row 4
export STAMPEDE_ADMIN_EMAIL=bench@example.com STAMPEDE_ADMIN_PASSWORD='bench password 1'
STAMPEDE_RATE_LIMIT=off STAMPEDE_LOG_LEVEL=warn STAMPEDE_REDIS_PREFIX="$SCHEMA" \
    target/release/stampede serve --test-users --listen "127.0.0.1:$PORT" \
    --database-url "$PG?options=-c%20search_path%3D$SCHEMA" \
    --stock-gate redis --redis-url "$REDIS" 2>"$DIR/server.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
. "$(dirname "$0")/lib.sh"
run healthz  --connections "$C" --requests 2000000 --duration "$D"
run drop     --connections "$C" --requests 2000000 --duration "$D" --users 1000
run firehose --connections "$C" --requests "${FIREHOSE_REQUESTS:-200000}" --duration "$D" --users 1000
hot_row 64
redis-cli -u "$REDIS" --scan --pattern "$SCHEMA:*" | xargs -r redis-cli -u "$REDIS" del >/dev/null
