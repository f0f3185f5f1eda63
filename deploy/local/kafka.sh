#!/usr/bin/env bash
# Single-node Apache Kafka 3.9.2 (KRaft, no ZooKeeper) for local tests, run from Maven Central jars.
# Usage: kafka.sh start|stop|status|reset|run CLASS [ARGS...]
# Everything lives in <repo>/.cache/kafka/ (jars in libs/, data in data/, log in server.log).
# Env: CALLPULSE_KAFKA_PORT (default 19092), CALLPULSE_KAFKA_CONTROLLER_PORT (default port+1),
# CALLPULSE_KAFKA_DIR (default <repo>/.cache/kafka; the jars always stay in .cache/kafka/libs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# CALLPULSE_KAFKA_DIR puts a second broker elsewhere (tests that stop a broker use their own).
KDIR="${CALLPULSE_KAFKA_DIR:-$ROOT/.cache/kafka}"
LIBS="$ROOT/.cache/kafka/libs"
DATA="$KDIR/data"
PIDFILE="$KDIR/kafka.pid"
LOG="$KDIR/server.log"
POM="$HERE/kafka-pom.xml"
PORT="${CALLPULSE_KAFKA_PORT:-19092}"
CPORT="${CALLPULSE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HEAP="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

# The pid file points at a live JVM started with *our* config. Reading /proc/PID/cmdline guards
# against pid reuse, and treats a zombie (empty cmdline; containers whose PID 1 never reaps) as dead.
running() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$KDIR/server.properties"
}

bootstrap() { sed -n 's|^advertised.listeners=PLAINTEXT://||p' "$KDIR/server.properties"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Runs a Kafka CLI class (StorageTool, TopicCommand, console producer/consumer...), logging
# warnings only and to stderr, so stdout stays clean (e.g. for random-uuid).
kjava() {
  [[ -f $KDIR/tools-log4j.properties ]] || cat >"$KDIR/tools-log4j.properties" <<EOF
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
  java -Dlog4j.configuration="file:$KDIR/tools-log4j.properties" -cp "$LIBS/*" "$@"
}

fetch_jars() {
  # The marker holds the pom's checksum: editing the pom (e.g. a version bump) triggers a re-fetch.
  local want; want=$(sha256sum <"$POM")
  [[ -f $LIBS/.complete && $(cat "$LIBS/.complete") == "$want" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  echo "Fetching Kafka jars with Maven into $LIBS ..."
  rm -rf "$LIBS" "$LIBS.tmp"
  mvn -q -B -f "$POM" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >"$KDIR/mvn.log" 2>&1 \
    || { tail -n 30 "$KDIR/mvn.log" >&2; die "Maven could not fetch the jars (see $KDIR/mvn.log)"; }
  echo "$want" >"$LIBS.tmp/.complete"
  mv "$LIBS.tmp" "$LIBS"  # atomic: an interrupted download never looks complete
}

write_config() {  # rewritten on every start so port changes take effect
  cat >"$KDIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
# Let the cleaner compact small topics quickly (a topic still needs a closed segment:
# create compacted test topics with a small segment.ms, e.g. --config segment.ms=100).
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.backoff.ms=1000
log.cleaner.min.cleanable.ratio=0.01
log.cleaner.min.compaction.lag.ms=0
log.cleaner.dedupe.buffer.size=8388608
EOF
  cat >"$KDIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$LOG
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
EOF
}

fail_start() {
  echo "kafka.sh: $1; last lines of its logs:" >&2
  tail -n 40 "$LOG" "$KDIR/stdout.log" >&2 2>/dev/null || true
  exit 1
}

start() {
  if running; then
    [[ $(bootstrap) == "127.0.0.1:$PORT" ]] || die "already running on $(bootstrap), not port $PORT: stop it first"
    echo "Kafka already running (pid $(cat "$PIDFILE")): bootstrap $(bootstrap)"; return
  fi
  command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
  port_open "$PORT" && die "port $PORT is already in use by another process (set CALLPULSE_KAFKA_PORT)"
  port_open "$CPORT" && die "controller port $CPORT is already in use (set CALLPULSE_KAFKA_CONTROLLER_PORT)"
  fetch_jars
  write_config
  if [[ ! -f $DATA/meta.properties ]]; then  # format the KRaft storage once
    kjava kafka.tools.StorageTool format -t "$(kjava kafka.tools.StorageTool random-uuid)" \
      -c "$KDIR/server.properties" >/dev/null
  fi
  if [[ -f $LOG ]]; then mv "$LOG" "$LOG.prev"; fi  # fresh log: the readiness grep sees this run only
  # setsid: own session, immune to the caller's Ctrl-C; 9>&-: don't leak the lock fd to the JVM.
  # shellcheck disable=SC2086  # $HEAP is deliberately word-split
  (cd "$KDIR" && exec setsid nohup java $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$KDIR/log4j.properties" -cp "$LIBS/*" \
    kafka.Kafka "$KDIR/server.properties" >"$KDIR/stdout.log" 2>&1 9>&- </dev/null) &
  echo $! >"$PIDFILE"
  local t0=$SECONDS
  until port_open "$PORT" && grep -q "Kafka Server started" "$LOG" 2>/dev/null; do
    running || { rm -f "$PIDFILE"; fail_start "Kafka exited during startup"; }
    ((SECONDS - t0 < 90)) || { stop; fail_start "Kafka not ready after 90 s (stopped it)"; }
    sleep 0.5
  done
  echo "Kafka started (pid $(cat "$PIDFILE")) in $((SECONDS - t0)) s: bootstrap 127.0.0.1:$PORT"
}

stop() {
  if ! running; then rm -f "$PIDFILE"; echo "Kafka not running"; return; fi
  local pid; pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 60); do running || break; sleep 0.5; done  # up to 30 s
  if running; then echo "Kafka did not stop in 30 s; killing it" >&2; kill -KILL "$pid"; fi
  for _ in $(seq 50); do running || break; sleep 0.1; done
  rm -f "$PIDFILE"
  echo "Kafka stopped"
}

mkdir -p "$KDIR"
case "${1:-}" in
  run) shift; [[ $# -ge 1 ]] || die "usage: kafka.sh run CLASS [ARGS...]"; [[ -f $LIBS/.complete ]] || fetch_jars; kjava "$@"; exit ;;
  status) if running; then echo "Kafka running (pid $(cat "$PIDFILE")): bootstrap $(bootstrap)"; exit 0; fi
          echo "Kafka not running"; exit 3 ;;
esac
# start/stop/reset are serialised (e.g. `make -j`) with a lock file.
exec 9>"$KDIR/.lock"
flock 9
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  reset) stop; rm -rf "$DATA" "$LOG" "$LOG.prev" "$KDIR/stdout.log"; echo "Kafka data deleted (jars kept)" ;;
  *) die "usage: kafka.sh start|stop|status|reset|run CLASS [ARGS...]" ;;
esac
