#!/usr/bin/env bash
# Start/stop the three distributed services (ingest :8001, aggregator :6066, api :8000) as
# background processes against the local Kafka and PostgreSQL. Pids and logs in .cache/run/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="$ROOT/.cache/run"
BIN="$ROOT/.venv/bin"
mkdir -p "$RUN"

export CALLPULSE_KAFKA_BOOTSTRAP="${CALLPULSE_KAFKA_BOOTSTRAP:-127.0.0.1:${CALLPULSE_KAFKA_PORT:-19092}}"
export CALLPULSE_DATABASE_URL="${CALLPULSE_DATABASE_URL:-postgresql://callpulse:callpulse@127.0.0.1:${CALLPULSE_PG_PORT:-15432}/callpulse}"
export CALLPULSE_DATA_DIR="${CALLPULSE_DATA_DIR:-$ROOT/.cache/aggregator}"

start_one() {  # name, command...
  local name=$1; shift
  local pidfile="$RUN/$name.pid"
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$pidfile"))"; return
  fi
  # exec: the pid recorded is the service's own (a new session, so `kill -- -pid` gets all of
  # it), and no shell lingers holding the caller's stdout open.
  (cd "$ROOT" && exec setsid nohup "$@" >"$RUN/$name.log" 2>&1 </dev/null) &
  echo $! >"$pidfile"
  echo "$name started (pid $(cat "$pidfile"), log $RUN/$name.log)"
}

stop_one() {
  local pidfile="$RUN/$1.pid"
  [[ -f $pidfile ]] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"; echo "$1 stopped"
}

wait_http() {  # url
  for _ in $(seq 1 120); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "timed out waiting for $1" >&2; return 1
}

case "${1:-}" in
  start)
    "$BIN/callpulse" topics create  # the services only check their topics at start
    start_one aggregator "$BIN/callpulse" aggregator
    start_one ingest "$BIN/callpulse" ingest --port 8001
    start_one api "$BIN/callpulse" api --port 8000
    wait_http http://127.0.0.1:8001/healthz && wait_http http://127.0.0.1:8000/healthz \
      && wait_http http://127.0.0.1:6066/healthz
    echo "ingest http://127.0.0.1:8001  api http://127.0.0.1:8000  aggregator http://127.0.0.1:6066"
    ;;
  stop) stop_one api; stop_one ingest; stop_one aggregator ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
