# Shared by the bench scripts: `run SCENARIO FLAGS…` runs stampede-loadtest
# against $PORT and prints one summary line from its JSON report.
run() {
    local out
    out=$(target/release/stampede-loadtest "$@" --url "http://127.0.0.1:$PORT" --json 2>/dev/null) || true
    python3 - "$1" <<PY "$out"
import json, sys
r = json.loads(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2] else None
if r is None:
    print(f"{sys.argv[1]:9} NOT RUN"); sys.exit()
l = r["latency_ms"]
ok = sum(n for s, n in r["statuses"].items() if s.startswith("2"))
print(f"{r['scenario']:9} {r['throughput_rps']:>9,.0f} req/s  2xx/s {ok / r['duration_secs']:>8,.0f}  "
      f"p50 {l['p50']:6.1f}  p90 {l['p90']:6.1f}  p99 {l['p99']:6.1f}  max {l['max']:7.1f} ms  "
      f"errors {sum(r['errors'].values())}  {'PASS' if r['passed'] else 'FAIL'}  statuses {dict(r['statuses'])}")
PY
}
