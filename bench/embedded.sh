#!/usr/bin/env bash
# Rushes in embedded mode (SQLite, in-process stock gate and line store):
# the trivial route, a coupon drop and firehose, a ticket sale (hold, order,
# pay with the fake provider) and a park line rush against one server,
# through one tool, in one run; then the trivial route again. Prints one
# summary line per scenario (and per step of the multi-step ones).
# Usage: bench/embedded.sh [CONNECTIONS] [SECONDS]   (STAMPEDE_BIN picks another
#   server binary, for a before/after pair in one sitting; release build first:
#   cargo build --release -p server -p loadtest)
# The firehose is bounded at 400,000 requests (FIREHOSE_REQUESTS), more than
# it sells in the duration, so it runs the whole window the CPU is sampled in.
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-256}; D=${2:-10}
PORT=${STAMPEDE_BENCH_PORT:-18555}
DIR=$(mktemp -d)
export STAMPEDE_ADMIN_EMAIL=bench@example.com STAMPEDE_ADMIN_PASSWORD='bench password 1'
STAMPEDE_RATE_LIMIT=off STAMPEDE_LOG_LEVEL=warn "${STAMPEDE_BIN:-target/release/stampede}" serve --test-users --fake-payments \
    --listen "127.0.0.1:$PORT" --database-url "sqlite://$DIR/stampede.db" 2>"$DIR/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
. "$(dirname "$0")/lib.sh"
disk_probe "$DIR"
run healthz  --connections "$C" --requests 2000000 --duration "$D"
run drop     --connections "$C" --requests 2000000 --duration "$D" --users 1000
run firehose --connections "$C" --requests "${FIREHOSE_REQUESTS:-400000}" --duration "$D" --users 1000
run tickets  --connections "$C" --requests "${FIREHOSE_REQUESTS:-400000}" --duration "$D" --users 1000
run line     --connections "$C" --requests 2000000 --duration "$D" --users "${LINE_GUESTS:-5000}" --call-batch 100
run healthz  --connections "$C" --requests 2000000 --duration "$D"
