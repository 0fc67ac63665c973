# Shared by the bench scripts: `run SCENARIO FLAGS…` runs stampede-loadtest
# against $PORT and prints one summary line from its JSON report, then one
# line of where the machine's CPU went while the rush ran: the share of one
# core taken by the server ($SERVER), PostgreSQL, Redis and the tool, and
# that share divided by the throughput (CPU microseconds per request). The
# CPU is read from /proc over the middle of the rush (from 1 s after the
# tool says it starts, for the rush's duration less 3 s), so the setup
# before it and the checks after it are left out.

# Clock ticks of user and system time of the given processes, summed.
ticks() {
    local total=0 pid
    for pid in "$@"; do
        if [ -r "/proc/$pid/stat" ]; then
            # Fields 14 and 15 (utime, stime), counted after the command's
            # parenthesised name, which may hold spaces.
            total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
        fi
    done
    echo "$total"
}

# `cpu_of NAME PID…` prints NAME=ticks for later subtraction.
sample_cpu() {
    echo "server=$(ticks ${SERVER:-}) postgres=$(ticks $(pgrep -x postgres)) redis=$(ticks $(pgrep -x redis-server)) tool=$(ticks "$1") at=$(date +%s.%N)"
}

run() {
    local scenario=$1 out err duration=10 tool before after arg prev=
    for arg in "$@"; do
        [ "$prev" = --duration ] && duration=$arg
        prev=$arg
    done
    out=$(mktemp); err=$(mktemp)
    target/release/stampede-loadtest "$@" --url "http://127.0.0.1:$PORT" --json >"$out" 2>"$err" &
    tool=$!
    for _ in $(seq 1 600); do grep -q 'rush:' "$err" 2>/dev/null && break; sleep 0.1; done
    before= after=
    if [ "$duration" -gt 3 ]; then
        sleep 1
        before=$(sample_cpu "$tool")
        sleep $((duration - 3))
        after=$(sample_cpu "$tool")
    fi
    wait "$tool" || true
    python3 - "$scenario" "$(cat "$out")" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
name, raw, before, after, hz = sys.argv[1:6]
r = json.loads(raw) if raw else None
if r is None:
    print(f"{name:9} NOT RUN"); sys.exit()
l = r["latency_ms"]
ok = sum(n for s, n in r["statuses"].items() if s.startswith("2"))
print(f"{r['scenario']:9} {r['throughput_rps']:>9,.0f} req/s  2xx/s {ok / r['duration_secs']:>8,.0f}  "
      f"p50 {l['p50']:6.1f}  p90 {l['p90']:6.1f}  p99 {l['p99']:6.1f}  max {l['max']:7.1f} ms  "
      f"errors {sum(r['errors'].values())}  {'PASS' if r['passed'] else 'FAIL'}  statuses {dict(r['statuses'])}")
if r.get("completed_per_sec") is not None:
    print(f"  completed {r['completed_per_sec']:,.0f}/s (whole flows)")
for s in r.get("steps", []):
    sl = s["latency_ms"]
    print(f"  step {s['name']:10} {s['throughput_rps']:>9,.0f} req/s over {s['duration_secs']:5.2f} s  "
          f"p50 {sl['p50']:6.1f}  p95 {sl['p95']:6.1f}  p99 {sl['p99']:6.1f}  max {sl['max']:7.1f} ms  "
          f"errors {sum(s['errors'].values())}  statuses {dict(s['statuses'])}")
if not r["passed"]:
    for c in r["checks"]:
        if not c["passed"]:
            print(f"  FAIL {c['name']}: {c['detail']}")
if before and after:
    b = dict(kv.split("=") for kv in before.split())
    a = dict(kv.split("=") for kv in after.split())
    secs = float(a.pop("at")) - float(b.pop("at"))
    shares = {k: (int(a[k]) - int(b[k])) / int(hz) / secs for k in a}
    shares = {k: v for k, v in shares.items() if v >= 0.005}
    rps = r["throughput_rps"] or 1
    used = " ".join(f"{k} {v:4.0%}" for k, v in shares.items())
    per = ", ".join(f"{k} {v / rps * 1e6:.0f}" for k, v in shares.items())
    total = sum(shares.values())
    print(f"  cpu     {used}  (sum {total:.0%} of 2 cores' 200%)  µs per request: {per}; "
          f"sum {total / rps * 1e6:.0f}")
PY
    rm -f "$out" "$err"
}

# `disk_probe DIR` prints how fast the disk under DIR makes a write durable:
# 200 appends of 256 KiB (about one claim batch's WAL frames), each followed
# by fdatasync, as a WAL commit does. The ratio goals move with it: the
# embedded firehose waits on it every commit, and pgbench's hot row is
# bounded by it.
disk_probe() {
    python3 - "$1" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "disk_probe")
block = os.urandom(256 * 1024)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
took = []
try:
    for _ in range(200):
        os.write(fd, block)
        start = time.perf_counter()
        os.fdatasync(fd)
        took.append(time.perf_counter() - start)
finally:
    os.close(fd)
    os.unlink(path)
took.sort()
print(f"disk      fdatasync of 256 KiB: p50 {took[100] * 1e3:.2f} ms, p99 {took[197] * 1e3:.2f} ms, "
      f"{len(took) / sum(took):,.0f}/s")
PY
}
