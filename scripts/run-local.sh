#!/usr/bin/env bash
# `make run`: a local Apache Kafka broker, one worker, and the simulator replaying a typhoon day
# at 60x real time. Metrics: http://127.0.0.1:${MONITOR_WEB_PORT:-6066}/metrics
# Ctrl-C stops everything (simulator, worker, broker) and leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."

KAFKA_PORT="${KAFKA_PORT:-9092}"
WEB_PORT="${MONITOR_WEB_PORT:-6066}"
SPEED="${SPEED:-60}"
STATE=var/run
mkdir -p "$STATE"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
worker_pid=""
sim_pid=""

cleanup() {
  trap - INT TERM EXIT
  echo
  echo "run-local: stopping..."
  [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null || true
  [[ -n "$worker_pid" ]] && kill "$worker_pid" 2>/dev/null || true
  [[ -n "$sim_pid" ]] && wait "$sim_pid" 2>/dev/null || true
  [[ -n "$worker_pid" ]] && wait "$worker_pid" 2>/dev/null || true
  bash deploy/kafka/kafka.sh stop --data-dir "$STATE/kafka" || true
  echo "run-local: stopped."
}
trap cleanup INT TERM EXIT

bash deploy/kafka/kafka.sh start --port "$KAFKA_PORT" --data-dir "$STATE/kafka"

.venv/bin/monitor --log-format console worker --bootstrap-servers "$BOOTSTRAP" \
  --contracts deploy/contracts.csv --web-port "$WEB_PORT" --data-dir "$STATE/worker" \
  --app-id callcenter-monitor-local >"$STATE/worker.log" 2>&1 &
worker_pid=$!

echo "run-local: waiting for the worker's /metrics ..."
for _ in $(seq 1 120); do
  if curl -fs "http://127.0.0.1:$WEB_PORT/metrics" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$worker_pid" 2>/dev/null; then
    echo "run-local: the worker exited; its log:" >&2; tail -40 "$STATE/worker.log" >&2; exit 1
  fi
  sleep 1
done

start="$(date -u +%Y-%m-%dT%H:%M:%S+00:00)"
.venv/bin/monitor --log-format console simulate --sink kafka --bootstrap-servers "$BOOTSTRAP" \
  --contracts deploy/contracts.csv --scenario typhoon --start "$start" --hours 24 \
  --speed "$SPEED" --duplicate-rate 0.01 --reorder-rate 0.01 --malformed-rate 0.002 \
  >"$STATE/simulator.log" 2>&1 &
sim_pid=$!

cat <<MSG

  callcenter-monitor is running (typhoon scenario, ${SPEED}x real time, 12 sample contracts)
    metrics : http://127.0.0.1:${WEB_PORT}/metrics
    health  : http://127.0.0.1:${WEB_PORT}/healthz
    Kafka   : ${BOOTSTRAP}  (topics callcenter.events, callcenter.dlq)
    logs    : ${STATE}/worker.log, ${STATE}/simulator.log
  Ctrl-C stops everything.

MSG
while kill -0 "$worker_pid" 2>/dev/null; do
  sleep 15
  curl -fs "http://127.0.0.1:$WEB_PORT/metrics" 2>/dev/null \
    | grep -E '^callcenter_(answered_within_30s_ratio|avg_hold_seconds|disconnect_rate)\{contract="H6348",line="member_services",window="1h"\}' \
    | sed 's/^/  H6348 1h: /' || true
done
echo "run-local: the worker exited; see $STATE/worker.log" >&2
exit 1
