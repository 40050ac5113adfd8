#!/usr/bin/env bash
# Scale-out benchmark (issue 5): throughput and latency of one tollgate instance against two
# instances sharing one Postgres store and one Redis for the limit counters, at the same
# total offered load. Every request passes a key limit, so each one makes its Redis round trip.
#
# nginx serves a canned chat completion on 127.0.0.1 (as in bench/run.sh); the open-loop load
# generator offers RATE requests/s for SECONDS, all to instance A in the first phase and half
# to A, half to B in the second. Only 127.0.0.1 is contacted; each phase is bounded.
# On a 2-core machine both instances, Postgres, Redis, nginx and the load share the same CPUs,
# so this shows the cost of sharing (Redis round trips, two processes), not more capacity.
#
# Usage: bench/scaleout.sh [RATE] [SECONDS]   (defaults: 2000 requests/s for 10 s)
# Needs TOLLGATE_TEST_POSTGRES_URL and TOLLGATE_TEST_REDIS_URL (as .ci/run sets them).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-2000}"
SECONDS_PER_PHASE="${2:-10}"
PG="${TOLLGATE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
REDIS="${TOLLGATE_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
OUT="bench/out/scaleout"
rm -rf "$OUT" && mkdir -p "$OUT"

if ! command -v nginx >/dev/null 2>&1; then
    echo "installing nginx-light from Debian's packages" >&2
    apt-get install -y -qq nginx-light >/dev/null
fi

cargo build --release -p tollgate -p tollgate-testkit --bins >&2
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/tollgate"
LOADGEN="$TARGET/release/tollgate-loadgen"

NGINX_PORT=18941
PORT_A=18942
PORT_B=18943
SCHEMA="bench_$(date +%s)"
psql -q "$PG" -c "CREATE SCHEMA $SCHEMA" >/dev/null
STORE="$PG?options=-c%20search_path%3D$SCHEMA"
cat > "$OUT/nginx.conf" <<CONF
worker_processes 1;
error_log $PWD/$OUT/nginx-error.log warn;
pid $PWD/$OUT/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $PWD/$OUT/nginx-tmp;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location /v1/chat/completions {
            default_type application/json;
            return 200 '{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench-upstream","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}';
        }
    }
}
CONF
mkdir -p "$OUT/nginx-tmp"
nginx -c "$PWD/$OUT/nginx.conf"
cleanup() {
    [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
    [ -n "${PID_A:-}" ] && kill "$PID_A" 2>/dev/null || true
    [ -n "${PID_B:-}" ] && kill "$PID_B" 2>/dev/null || true
    psql -q "$PG" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

printf 'bench-upstream-credential\n' > "$OUT/upstream.key"
cat > "$OUT/tollgate.toml" <<CONF
[storage]
data_dir = "data"
[limits]
key = { rpm = 100000000 }
redis_namespace = "$SCHEMA"
[providers.upstream]
kind = "openai"
base_url = "http://127.0.0.1:$NGINX_PORT/v1"
api_key = "file://$PWD/$OUT/upstream.key"
[providers.upstream.review]
reviewed_by = "bench"
reviewed_on = $(date -u +%F)
expires = $(date -u -d '+1 year' +%F)
retention_days = 0
zero_data_retention = true
trains_on_customer_data = false
regions = ["local"]
dpa_signed = false
data_classes = ["public", "internal"]
[routes.bench]
targets = [{ provider = "upstream", model = "bench-upstream" }]
CONF
G=(--config "$OUT/tollgate.toml" --store "$STORE")
KEY=$("$BIN" "${G[@]}" keys create --name bench --json | sed -E 's/.*"key":"([^"]+)".*/\1/')
MASTER="$OUT/data/master.key"
serve() { # PORT DATA_DIR
    "$BIN" "${G[@]}" --master-key-file "$MASTER" --data-dir "$2" serve --listen "127.0.0.1:$1" --redis "$REDIS" > "$2.log" 2>&1 &
}
serve "$PORT_A" "$OUT/a"; PID_A=$!
serve "$PORT_B" "$OUT/b"; PID_B=$!
for port in "$PORT_A" "$PORT_B"; do
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.1
    done
done
URL_A="http://127.0.0.1:$PORT_A/v1/chat/completions"
URL_B="http://127.0.0.1:$PORT_B/v1/chat/completions"
"$LOADGEN" "$URL_A" 200 2 "$KEY" >/dev/null
"$LOADGEN" "$URL_B" 200 2 "$KEY" >/dev/null

ONE=$("$LOADGEN" "$URL_A" "$RATE" "$SECONDS_PER_PHASE" "$KEY")
HALF=$((RATE / 2))
"$LOADGEN" "$URL_A" "$HALF" "$SECONDS_PER_PHASE" "$KEY" > "$OUT/two-a.json" &
LA=$!
"$LOADGEN" "$URL_B" "$HALF" "$SECONDS_PER_PHASE" "$KEY" > "$OUT/two-b.json"
wait "$LA"

python3 - "$ONE" "$(cat "$OUT/two-a.json")" "$(cat "$OUT/two-b.json")" <<'PY'
import json, sys
one, a, b = (json.loads(x) for x in sys.argv[1:4])
print(f"{'':24}{'one instance':>14}{'two: A':>10}{'two: B':>10}{'two: total':>12}")
print(f"{'throughput (req/s)':24}{one['throughput_rps']:>14.1f}{a['throughput_rps']:>10.1f}{b['throughput_rps']:>10.1f}{a['throughput_rps']+b['throughput_rps']:>12.1f}")
for k, label in [("p50_ms", "latency p50 (ms)"), ("p99_ms", "latency p99 (ms)"), ("sched_p99_ms", "from schedule p99 (ms)")]:
    print(f"{label:24}{one[k]:>14.3f}{a[k]:>10.3f}{b[k]:>10.3f}{'':>12}")
print(f"{'errors':24}{one['errors']:>14}{a['errors']:>10}{b['errors']:>10}")
print(json.dumps({"one": one, "two_a": a, "two_b": b}))
PY
