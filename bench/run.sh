#!/usr/bin/env bash
# Gateway overhead benchmark (issue: auth and logging on, added latency p50 <= 0.3 ms and
# p99 <= 1 ms at 1,000 requests/s on 2 cores).
#
# nginx (from Debian's packages) serves a canned chat completion on 127.0.0.1; tollgate runs in
# front of it with a real virtual key and JSON request logging to a file. The same open-loop
# load generator then measures, in one run and side by side, nginx alone and through tollgate.
# Only 127.0.0.1 is ever contacted; each phase is bounded in rate and time.
#
# Usage: bench/run.sh [RATE] [SECONDS]     (defaults: 1000 requests/s for 20 s)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-1000}"
SECONDS_PER_PHASE="${2:-20}"
OUT="bench/out"
rm -rf "$OUT" && mkdir -p "$OUT"

if ! command -v nginx >/dev/null 2>&1; then
    echo "installing nginx-light from Debian's packages" >&2
    apt-get install -y -qq nginx-light >/dev/null
fi

cargo build --release -p tollgate -p tollgate-testkit --bins >&2
BIN=target/release/tollgate
LOADGEN=target/release/tollgate-loadgen

NGINX_PORT=18931
TOLLGATE_PORT=18932
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
            return 200 '{"id":"chatcmpl-bench","object":"chat.completion","created":1,"model":"bench-upstream","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":9,"total_tokens":18}}';
        }
    }
}
CONF
mkdir -p "$OUT/nginx-tmp"
nginx -c "$PWD/$OUT/nginx.conf"
cleanup() {
    [ -f "$OUT/nginx.pid" ] && kill "$(cat "$OUT/nginx.pid")" 2>/dev/null || true
    [ -n "${TG_PID:-}" ] && kill "$TG_PID" 2>/dev/null || true
}
trap cleanup EXIT

printf 'bench-upstream-credential\n' > "$OUT/upstream.key"
cat > "$OUT/tollgate.toml" <<CONF
[server]
listen = "127.0.0.1:$TOLLGATE_PORT"
[storage]
data_dir = "data"
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
KEY=$("$BIN" --config "$OUT/tollgate.toml" keys create --name bench --json | sed -E 's/.*"key":"([^"]+)".*/\1/')
"$BIN" --config "$OUT/tollgate.toml" serve > "$OUT/tollgate.log" 2>&1 &
TG_PID=$!
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$TOLLGATE_PORT/healthz" >/dev/null && break
    sleep 0.1
done

# Warm both paths (connection pools, caches), then measure.
"$LOADGEN" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" 200 2 >/dev/null
"$LOADGEN" "http://127.0.0.1:$TOLLGATE_PORT/v1/chat/completions" 200 2 "$KEY" >/dev/null
DIRECT=$("$LOADGEN" "http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "$RATE" "$SECONDS_PER_PHASE")
GATEWAY=$("$LOADGEN" "http://127.0.0.1:$TOLLGATE_PORT/v1/chat/completions" "$RATE" "$SECONDS_PER_PHASE" "$KEY")
LOG_LINES=$(grep -c '"message":"request"' "$OUT/tollgate.log" || true)

python3 - "$DIRECT" "$GATEWAY" "$LOG_LINES" <<'PY'
import json, sys
d, g, lines = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
print(f"{'':22}{'nginx alone':>14}{'through tollgate':>18}{'added':>10}")
for k, label in [("p50_ms", "latency p50 (ms)"), ("p90_ms", "latency p90 (ms)"), ("p99_ms", "latency p99 (ms)"), ("max_ms", "latency max (ms)"),
                 ("sched_p50_ms", "from schedule p50"), ("sched_p99_ms", "from schedule p99")]:
    print(f"{label:22}{d[k]:>14.3f}{g[k]:>18.3f}{g[k]-d[k]:>10.3f}")
print(f"{'throughput (req/s)':22}{d['throughput_rps']:>14.1f}{g['throughput_rps']:>18.1f}")
print(f"{'errors':22}{d['errors']:>14}{g['errors']:>18}")
print(f"request log lines written by tollgate: {lines}")
print(json.dumps({"direct": d, "tollgate": g}))
PY
