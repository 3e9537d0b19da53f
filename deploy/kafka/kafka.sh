#!/usr/bin/env bash
# Run a real, pinned Apache Kafka broker (single-node KRaft) on 127.0.0.1
# without Docker. The jars come from Maven Central via deploy/kafka/pom.xml
# (the Kafka tarball's download host is not reachable from our machines).
#
# Usage:
#   kafka.sh fetch
#   kafka.sh start  [--port 9092] [--controller-port PORT+1000] [--data-dir ./.kafka-data] [--timeout 60]
#                   [--extra-config FILE] [--add-scram 'MECHANISM=[name=USER,password=PASS]' ...]
#     --extra-config  server.properties lines appended to the generated ones (later keys win):
#                     TLS and SASL listeners, say. Keep PLAINTEXT://127.0.0.1:PORT among them:
#                     readiness is checked there.
#     --add-scram     a SCRAM credential written when the storage is formatted (first start of a
#                     data dir), as kafka-storage format --add-scram takes it; repeatable.
#   kafka.sh stop   [--data-dir ./.kafka-data]
#   kafka.sh status [--data-dir ./.kafka-data]
#   kafka.sh topics [--port 9092] list
#   kafka.sh topics [--port 9092] create NAME PARTITIONS
#
# Environment overrides (flags win over these):
#   KAFKA_HOME            jar cache (default ~/.cache/callcenter-monitor/kafka-<version>)
#   KAFKA_PORT            broker port (default 9092)
#   KAFKA_CONTROLLER_PORT KRaft controller port (default KAFKA_PORT+1000, so 10092; KAFKA_PORT-1000
#                         above 64535). Not +1: 9093 and 9094 are Alertmanager's web and
#                         cluster ports, which a local Prometheus setup uses.
#   KAFKA_DATA_DIR        data dir: config, logs, pid file (default ./.kafka-data)
#   KAFKA_START_TIMEOUT   seconds to wait for readiness (default 60)
#   KAFKA_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default 30)
#   KAFKA_HEAP_OPTS       broker heap (default "-Xms256m -Xmx512m")
#   JAVA_HOME             Java to use (default: java on PATH; Java 17 is fine)
set -euo pipefail

# Keep in sync with <kafka.version> in pom.xml. 3.9.x on purpose: Kafka 4.x
# removed the old protocol versions that aiokafka/faust-streaming still use.
KAFKA_VERSION=3.9.2

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_HOME="${KAFKA_HOME:-$HOME/.cache/callcenter-monitor/kafka-$KAFKA_VERSION}"
LIBS="$KAFKA_HOME/libs"
MARKER="$KAFKA_HOME/.fetched"   # holds the pom's hash: a pom change forces a re-fetch
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-}"
DATA_DIR="${KAFKA_DATA_DIR:-./.kafka-data}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
EXTRA_CONFIG=""
SCRAM_ARGS=()

log() { echo "kafka.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {  # the header comment is the help text; stderr unless asked for
  local code="${1:-2}"
  if [[ "$code" == 0 ]]; then
    sed -n '6,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  else
    sed -n '6,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  fi
  exit "$code"
}

# ---------------------------------------------------------------- fetch ----

pom_hash() { sha256sum "$SCRIPT_DIR/pom.xml" | cut -d' ' -f1; }

cmd_fetch() {
  # Fast path: the marker records which pom the libs were fetched for.
  if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$(pom_hash)" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS ..."
  mkdir -p "$KAFKA_HOME"
  # Copy into a temp dir and swap it in, so an interrupted fetch never leaves
  # a half-filled libs/ that a later start would trust.
  local tmp="$KAFKA_HOME/libs.tmp.$$"
  rm -rf "$tmp"
  # The sed strips the stray ANSI resets Debian's Maven 3.8 prints even with
  # -B -q; pipefail keeps mvn's exit status. Maven reports errors on stdout.
  if ! mvn -B -q -f "$SCRIPT_DIR/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 \
        | sed 's/\x1b\[[0-9;]*m//g' >&2; then
    rm -rf "$tmp"
    die "mvn failed to fetch the Kafka jars"
  fi
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  # mvn may leave target/ next to the pom on some plugin versions; it is junk.
  rm -rf "$SCRIPT_DIR/target"
  pom_hash >"$MARKER"
  log "fetched $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

# -------------------------------------------------------------- helpers ----

# Run a short-lived Kafka CLI class with quiet logging and a small, fast-starting JVM.
# An array rather than only a function so it can also run under `timeout`.
TOOL_JVM=("$JAVA" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  "-Dlog4j.configuration=file:$SCRIPT_DIR/tools-log4j.properties" -cp "$LIBS/*")
kafka_tool() { "${TOOL_JVM[@]}" "$@"; }

port_open() {  # true if something accepts TCP connections on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The KRaft controller's port when none is given: far from the broker's, because the
# neighbours of 9092 are taken (9093/9094 are Alertmanager's web and cluster ports).
default_controller_port() {
  if (( $1 + 1000 <= 65535 )); then echo $(( $1 + 1000 )); else echo $(( $1 - 1000 )); fi
}

pid_file() { echo "$DATA_DIR/kafka.pid"; }

# Prints the broker pid if the pid file names a live kafka.Kafka process.
# The cmdline check guards against a stale pid file whose pid was reused.
running_pid() {
  local pf pid
  pf="$(pid_file)"
  [[ -f "$pf" ]] || return 1
  pid="$(cat "$pf")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # No pipe here: with pipefail, an early-exiting grep -q could fail the check.
  grep -qa 'kafka\.Kafka' "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

# Port the running broker was configured with (from its server.properties).
configured_port() {
  sed -n 's#^advertised\.listeners=PLAINTEXT://127\.0\.0\.1:\([0-9]*\)$#\1#p' \
    "$DATA_DIR/server.properties" 2>/dev/null
}

log_tail() {
  log "---- last 40 lines of $DATA_DIR/kafka.log ----"
  tail -n 40 "$DATA_DIR/kafka.log" >&2 2>/dev/null || true
  log "----"
}

write_config() {
  # Regenerated on every start so flags always win; the storage itself
  # (cluster id, node id) lives in meta.properties under log.dirs.
  cat >"$DATA_DIR/server.properties" <<EOF
# Generated by deploy/kafka/kafka.sh -- edits are overwritten on start.
# Single-node KRaft: this process is both broker and controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
# Bind to loopback only: this is a dev/test broker, never reachable from outside.
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR/logs
# One broker: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Consumers in tests should not wait 3 s for the first rebalance.
group.initial.rebalance.delay.ms=0
num.partitions=8
auto.create.topics.enable=true
EOF
  if [[ -n "$EXTRA_CONFIG" ]]; then
    { echo "# From --extra-config $EXTRA_CONFIG:"; cat "$EXTRA_CONFIG"; } >>"$DATA_DIR/server.properties"
  fi
}

# ---------------------------------------------------------------- start ----

cmd_start() {
  cmd_fetch
  CONTROLLER_PORT="${CONTROLLER_PORT:-$(default_controller_port "$PORT")}"
  mkdir -p "$DATA_DIR"
  DATA_DIR="$(cd "$DATA_DIR" && pwd)"   # absolute: it ends up in server.properties

  local pid
  if pid="$(running_pid)"; then
    local cur
    cur="$(configured_port)"
    if [[ "$cur" == "$PORT" ]]; then
      log "already running (pid $pid) on 127.0.0.1:$PORT, data dir $DATA_DIR"
      return 0
    fi
    die "a broker for $DATA_DIR is already running (pid $pid) on port ${cur:-?}, not $PORT; stop it first"
  fi
  rm -f "$(pid_file)"

  # Fail early and clearly rather than letting the JVM die on a bind error.
  port_open "$PORT" && die "port $PORT on 127.0.0.1 is already in use by another process"
  port_open "$CONTROLLER_PORT" && die "controller port $CONTROLLER_PORT on 127.0.0.1 is already in use"

  write_config
  # KRaft refuses to start on unformatted storage. Kafka 3.9's StorageTool
  # wants a cluster id; with a static controller.quorum.voters list plain
  # `format` is right (--standalone is only for the dynamic-quorum setup).
  if [[ ! -f "$DATA_DIR/logs/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid)"
    kafka_tool kafka.tools.StorageTool format -t "$cluster_id" \
      -c "$DATA_DIR/server.properties" "${SCRAM_ARGS[@]+"${SCRAM_ARGS[@]}"}" >/dev/null \
      || die "formatting storage in $DATA_DIR/logs failed"
  fi

  log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $CONTROLLER_PORT), data dir $DATA_DIR"
  # setsid: detach from our process group so a Ctrl-C in the calling terminal
  # (or the caller exiting) does not take the broker down with it; stop does.
  # shellcheck disable=SC2086  # HEAP_OPTS is intentionally word-split
  setsid "$JAVA" $HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$SCRIPT_DIR/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$DATA_DIR/server.properties" \
    </dev/null >"$DATA_DIR/kafka.log" 2>&1 &
  pid=$!
  echo "$pid" >"$(pid_file)"

  # Ready = process alive, port accepting, startup logged, and a real client
  # (TopicCommand) can fetch metadata. The last step is what clients need.
  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$(pid_file)"
      log_tail
      die "broker exited during startup (see $DATA_DIR/kafka.log)"
    fi
    if port_open "$PORT" && grep -q 'Kafka Server started' "$DATA_DIR/kafka.log" \
       && timeout 20 "${TOOL_JVM[@]}" org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "127.0.0.1:$PORT" --list >/dev/null 2>&1; then
      log "ready after ${SECONDS}s (pid $pid)"
      return 0
    fi
    sleep 0.5
  done
  log_tail
  log "broker not ready after ${START_TIMEOUT}s; stopping it"
  cmd_stop || true
  exit 1
}

# ----------------------------------------------------------------- stop ----

cmd_stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$(pid_file)"
    log "not running (data dir $DATA_DIR)"
    return 0
  fi
  # SIGTERM lets Kafka flush and write its clean-shutdown marker, which
  # avoids log recovery on the next start.
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still alive after ${STOP_TIMEOUT}s; sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$(pid_file)"
  log "stopped (pid $pid)"
}

# --------------------------------------------------------------- status ----

cmd_status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running pid=$pid port=$(configured_port) data_dir=$DATA_DIR"
  else
    echo "stopped data_dir=$DATA_DIR"
    return 3   # LSB convention for "not running"
  fi
}

# --------------------------------------------------------------- topics ----

cmd_topics() {
  cmd_fetch
  local bs="127.0.0.1:$PORT"
  case "${1:-}" in
    list)
      kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --list ;;
    create)
      [[ $# -eq 3 && "$3" =~ ^[0-9]+$ ]] || usage
      # --if-not-exists makes this safe to run on every `make run`.
      kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" \
        --create --if-not-exists --topic "$2" --partitions "$3" --replication-factor 1 ;;
    *) usage ;;
  esac
}

# ----------------------------------------------------------------- main ----

[[ $# -ge 1 ]] || usage
CMD="$1"; shift
ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) PORT="${2:?--port needs a value}"; shift 2 ;;
    --controller-port) CONTROLLER_PORT="${2:?--controller-port needs a value}"; shift 2 ;;
    --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; shift 2 ;;
    --timeout) START_TIMEOUT="${2:?--timeout needs a value}"; shift 2 ;;
    --extra-config) EXTRA_CONFIG="${2:?--extra-config needs a file}"; shift 2 ;;
    --add-scram) SCRAM_ARGS+=(--add-scram "${2:?--add-scram needs a credential}"); shift 2 ;;
    -h|--help) usage 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
[[ "$PORT" =~ ^[0-9]+$ ]] || die "bad port: $PORT"
[[ -z "$EXTRA_CONFIG" || -f "$EXTRA_CONFIG" ]] || die "--extra-config: no such file: $EXTRA_CONFIG"

case "$CMD" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  topics) cmd_topics "${ARGS[@]+"${ARGS[@]}"}" ;;
  -h|--help|help) usage 0 ;;
  *) usage ;;
esac
