#!/usr/bin/env bash
# `make run`: a local Apache Kafka broker, one worker, the project's Prometheus (scrape config
# and rules) and Alertmanager (routing and inhibitions, receivers emptied), and a simulated
# feed; then `monitor top` in the foreground. Ctrl-C stops everything and exits 0.
#
# Every run gets a fresh state directory, var/run/<UTC timestamp>/ (broker, worker, Prometheus
# and Alertmanager data, generated configs, logs; var/run/latest points at it), and only the
# newest KEEP_RUNS (5) are kept. Fresh state, not new event ids: the simulator's ids depend
# on its seed only, so a run on the previous run's state would see nothing but duplicates.
#
# The feed is a fixed busy stretch, whatever the hour: a typhoon day (long holds, many abandons
# and drops) from 07:00 Eastern on Monday 2026-01-05 (START), at SPEED x real time (60: a
# minute here is an hour of calls), on the twelve contracts of deploy/contracts.csv; H1001
# (New York) fails outright (nobody answers) and opens an outage once its required hours
# start at 08:00. At 60x (measured) the 1-hour figures breach and calls wait in the live
# queues within 10 s, the outage opens after about 70 s (08:00 plus the 2-minute grace of
# event time, plus the calls it takes) and CallCenterOutageOpened fires about 20 s later.
# The worker accepts these times: they are in the past (only events more than --max-future
# ahead of the wall clock are refused) and arrive in order (lateness is 6 h of event time).
#
# Ports (each overridable by the variable named): Kafka KAFKA_PORT 9092, its KRaft controller
# KAFKA_CONTROLLER_PORT (kafka.sh's default, KAFKA_PORT+1000 = 10092), worker MONITOR_WEB_PORT
# 6066, Prometheus PROMETHEUS_PORT 6090, Alertmanager ALERTMANAGER_PORT 6093 (clustering off:
# no cluster port). Not Prometheus' 9090 nor Alertmanager's 9093/9094, which a Prometheus set
# up on this machine may already use.
set -euo pipefail
cd "$(dirname "$0")/.."

# Ctrl-C goes to the terminal's foreground process group, make included, and make dies of the
# signal (status 130, "*** Interrupt") whatever its recipe does. With job control on, this
# outer shell runs the real work as a foreground job in a process group of its own, which then
# gets the terminal and the Ctrl-C; make and this shell wait for it and return its status.
if [[ -t 0 && -z "${RUN_LOCAL_INNER:-}" ]]; then
  set -m
  status=0
  RUN_LOCAL_INNER=1 bash "$0" "$@" || status=$?
  exit "$status"
fi

KAFKA_PORT="${KAFKA_PORT:-9092}"
WEB_PORT="${MONITOR_WEB_PORT:-6066}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-6090}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-6093}"
SPEED="${SPEED:-60}"
START="${START:-2026-01-05T07:00:00-05:00}"
KEEP_RUNS="${KEEP_RUNS:-5}"
STRUCK=H1001
CONTRACTS=deploy/contracts.csv
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
MONITOR=.venv/bin/monitor
[[ "$KEEP_RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "run-local: KEEP_RUNS must be 1 or more" >&2; exit 2; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for spec in "MONITOR_WEB_PORT=$WEB_PORT" "PROMETHEUS_PORT=$PROMETHEUS_PORT" \
            "ALERTMANAGER_PORT=$ALERTMANAGER_PORT"; do
  if port_busy "${spec#*=}"; then
    echo "run-local: port ${spec#*=} is in use; choose another with ${spec%=*}=PORT" >&2
    exit 1
  fi
done

# The newest KEEP_RUNS - 1 earlier runs stay, for their logs; a run whose broker is still
# alive (another `make run` on other ports) is never removed.
RUNS=var/run
mkdir -p "$RUNS"
mapfile -t old_runs < <(find "$RUNS" -mindepth 1 -maxdepth 1 -type d -name '????????T??????Z' \
                          | sort | head -n "-$((KEEP_RUNS - 1))")
for dir in "${old_runs[@]+"${old_runs[@]}"}"; do
  bash deploy/kafka/kafka.sh status --data-dir "$dir/kafka" >/dev/null 2>&1 || rm -rf "$dir"
done
RUN_ID="$(date -u +%Y%m%dT%H%M%SZ)"
STATE="$RUNS/$RUN_ID"
mkdir "$STATE"
ln -sfn "$RUN_ID" "$RUNS/latest"

worker_pid="" feed_pid="" prometheus_pid="" alertmanager_pid="" sleep_pid=""

stop_all() {
  local pid name waited
  # Every pid first, then the waits: they stop in parallel. The worker leaves its group and
  # commits through the broker, so the broker goes last.
  for pid in "$feed_pid" "$worker_pid" "$prometheus_pid" "$alertmanager_pid" "$sleep_pid"; do
    [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null || true
  done
  for name in feed worker prometheus alertmanager; do
    pid="${name}_pid"; pid="${!pid}"
    [[ -n "$pid" ]] || continue
    waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < 150)); do sleep 0.1; waited=$((waited + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
      echo "run-local: the $name did not stop within 15 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  bash deploy/kafka/kafka.sh stop --data-dir "$STATE/kafka" || true
}

cleanup() {
  # A second Ctrl-C while stopping must not leave half of it running.
  trap '' INT TERM
  trap - EXIT
  echo
  echo "run-local: stopping..."
  stop_all
  echo "run-local: stopped; state and logs of this run are in $STATE/"
}
trap 'cleanup; exit 0' INT TERM
trap 'status=$?; cleanup; exit $status' EXIT

# Background processes read nothing from the terminal, and write only to their logs.
bash deploy/kafka/kafka.sh start --port "$KAFKA_PORT" --data-dir "$STATE/kafka"
CONTROLLER_PORT="$(sed -n 's/^controller\.quorum\.voters=1@127\.0\.0\.1://p' \
                   "$STATE/kafka/server.properties")"

"$MONITOR" --log-format console worker --bootstrap-servers "$BOOTSTRAP" \
  --contracts "$CONTRACTS" --web-port "$WEB_PORT" --data-dir "$STATE/worker" \
  --app-id callcenter-monitor-local </dev/null >"$STATE/worker.log" 2>&1 &
worker_pid=$!

.venv/bin/python scripts/run_local.py configs --state "$STATE" --worker-port "$WEB_PORT" \
  --alertmanager-port "$ALERTMANAGER_PORT"
# --cluster.listen-address= : a single Alertmanager, no gossip port (9094 by default).
prometheus-alertmanager --config.file="$STATE/alertmanager.yml" \
  --storage.path="$STATE/alertmanager" --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
  --cluster.listen-address= </dev/null >"$STATE/alertmanager.log" 2>&1 &
alertmanager_pid=$!
prometheus --config.file="$STATE/prometheus.yml" --storage.tsdb.path="$STATE/prometheus" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" </dev/null >"$STATE/prometheus.log" 2>&1 &
prometheus_pid=$!

wait_up() {  # name pid url log: until url answers 2xx, or the process dies, or 120 s pass
  local name=$1 pid=$2 url=$3 log=$4
  for _ in $(seq 1 240); do
    curl -fs -o /dev/null "$url" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-local: the $name exited; the end of $log:" >&2; tail -40 "$log" >&2; exit 1
    fi
    sleep 0.5
  done
  echo "run-local: the $name is not up after 120 s; see $log" >&2
  exit 1
}
echo "run-local: waiting for the worker, Prometheus and Alertmanager ..."
wait_up worker "$worker_pid" "http://127.0.0.1:$WEB_PORT/metrics" "$STATE/worker.log"
wait_up Alertmanager "$alertmanager_pid" "http://127.0.0.1:$ALERTMANAGER_PORT/-/ready" \
  "$STATE/alertmanager.log"
wait_up Prometheus "$prometheus_pid" "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" \
  "$STATE/prometheus.log"

.venv/bin/python scripts/run_local.py feed --state "$STATE" --contracts "$CONTRACTS" \
  --struck "$STRUCK" --start "$START" --speed "$SPEED" --bootstrap-servers "$BOOTSTRAP" \
  </dev/null >"$STATE/feed.log" 2>&1 &
feed_pid=$!

cat <<MSG

  callcenter-monitor: a typhoon day from $START at ${SPEED}x,
  12 contracts; $STRUCK's call center is down (an outage from 08:00 its time)
    worker       http://127.0.0.1:$WEB_PORT/metrics  (/healthz, /readyz)
    Prometheus   http://127.0.0.1:$PROMETHEUS_PORT  (/alerts)
    Alertmanager http://127.0.0.1:$ALERTMANAGER_PORT  (receivers emptied: nobody is notified)
    Kafka        $BOOTSTRAP, KRaft controller 127.0.0.1:$CONTROLLER_PORT
    state, logs  $STATE/  ($RUNS/latest; $KEEP_RUNS runs kept)
  Ctrl-C stops everything.

MSG

TOP=("$MONITOR" top --url "http://127.0.0.1:$WEB_PORT/metrics"
     --alertmanager "http://127.0.0.1:$ALERTMANAGER_PORT")
if [[ -t 1 ]]; then
  sleep 2  # time to read the addresses before the table takes the screen
  "${TOP[@]}" || true
  cleanup
  exit 0
fi
# No terminal (a log file, CI): a plain table every 30 s while the worker runs. The pause is
# a background sleep and `wait`, which a signal interrupts at once (a foreground sleep would
# hold the trap back for up to 30 s).
while kill -0 "$worker_pid" 2>/dev/null; do
  sleep 30 &
  sleep_pid=$!
  wait "$sleep_pid" || true
  "${TOP[@]}" --once || true
done
echo "run-local: the worker exited; see $STATE/worker.log" >&2
exit 1
