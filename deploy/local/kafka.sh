#!/usr/bin/env bash
# Apache Kafka (KRaft, no ZooKeeper) for local tests, run from Maven Central jars: one broker by
# default, or a cluster of N, optionally with a SASL_SSL listener.
# Usage: kafka.sh start|stop|status|reset|kill NODE|run CLASS [ARGS...]
# Everything lives in <repo>/.cache/kafka/ (jars in libs/, data in data/, log in server.log).
# Env (the defaults are the single broker everyone's tests use):
#   CALLPULSE_KAFKA_PORT (default 19092), CALLPULSE_KAFKA_CONTROLLER_PORT (default port+1),
#   CALLPULSE_KAFKA_DIR (default <repo>/.cache/kafka; the jars always stay in .cache/kafka/libs*).
#   CALLPULSE_KAFKA_VERSION: 3.9.2 (default, kafka-pom.xml, jars in .cache/kafka/libs) or 4.4.0
#     (kafka-pom-4.xml, jars in .cache/kafka/libs-4.4.0).
#   CALLPULSE_KAFKA_BROKERS: N > 1 starts a KRaft cluster of N combined broker+controller nodes;
#     node i listens on port+3(i-1) (client), +1 (controller), +2 (SASL_SSL), data in DIR/node-i.
#     Replicated internal topics, default.replication.factor min(N, 3).
#   CALLPULSE_KAFKA_SASL_SSL=1: each node also listens with SASL_SSL on its client port + 2
#     (single broker: CALLPULSE_KAFKA_SASL_PORT, default port+2). The script makes a CA and the
#     brokers' certificate (SAN 127.0.0.1, localhost) in DIR/tls/ (ca.pem for clients), and the
#     SCRAM-SHA-256/512 user CALLPULSE_KAFKA_SASL_USERNAME (default callpulse) with password
#     CALLPULSE_KAFKA_SASL_PASSWORD (default callpulse-secret); PLAIN accepts the same user.
#     CALLPULSE_KAFKA_SSL_CLIENT_AUTH=required|requested (default none) asks clients for a
#     certificate signed by the CA too (mTLS; DIR/tls/client.pem and client.key are one).
#   `kill NODE` SIGKILLs one node of the cluster (failure tests); `start` brings it back.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# CALLPULSE_KAFKA_DIR puts a second broker elsewhere (tests that stop a broker use their own).
KDIR="${CALLPULSE_KAFKA_DIR:-$ROOT/.cache/kafka}"
VERSION="${CALLPULSE_KAFKA_VERSION:-3.9.2}"
case "$VERSION" in
  3.9.2) LIBS="$ROOT/.cache/kafka/libs"; POM="$HERE/kafka-pom.xml" ;;
  4.4.0) LIBS="$ROOT/.cache/kafka/libs-$VERSION"; POM="$HERE/kafka-pom-4.xml" ;;
  *) echo "kafka.sh: CALLPULSE_KAFKA_VERSION=$VERSION is not supported (3.9.2 or 4.4.0)" >&2; exit 1 ;;
esac
PORT="${CALLPULSE_KAFKA_PORT:-19092}"
BROKERS="${CALLPULSE_KAFKA_BROKERS:-1}"
SASL_SSL="${CALLPULSE_KAFKA_SASL_SSL:-0}"
SASL_USER="${CALLPULSE_KAFKA_SASL_USERNAME:-callpulse}"
SASL_PASSWORD="${CALLPULSE_KAFKA_SASL_PASSWORD:-callpulse-secret}"
TLS="$KDIR/tls"
CLIENT_AUTH="${CALLPULSE_KAFKA_SSL_CLIENT_AUTH:-none}"
HEAP="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

die() { echo "kafka.sh: $*" >&2; exit 1; }
[[ $BROKERS =~ ^[1-9][0-9]*$ ]] || die "CALLPULSE_KAFKA_BROKERS=$BROKERS is not a positive number"

# node I: sets NDIR, DATA, PIDFILE, LOG, NPORT, NCPORT, NSPORT for node I (1-based). One broker
# keeps today's layout (everything directly in KDIR, controller on CALLPULSE_KAFKA_CONTROLLER_PORT).
node() {
  NODE=$1
  if ((BROKERS == 1)); then
    NDIR="$KDIR"; NPORT=$PORT
    NCPORT="${CALLPULSE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
    NSPORT="${CALLPULSE_KAFKA_SASL_PORT:-$((PORT + 2))}"
  else
    NDIR="$KDIR/node-$NODE"; NPORT=$((PORT + 3 * (NODE - 1)))
    NCPORT=$((NPORT + 1)); NSPORT=$((NPORT + 2))
  fi
  DATA="$NDIR/data"; PIDFILE="$NDIR/kafka.pid"; LOG="$NDIR/server.log"
}

# The pid file points at a live JVM started with *our* config. Reading /proc/PID/cmdline guards
# against pid reuse, and treats a zombie (empty cmdline; containers whose PID 1 never reaps) as dead.
running() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$NDIR/server.properties"
}

# The recorded pid can be a short-lived parent (setsid forks when it leads its process group):
# take the JVM running this node's config instead.
adopt() {
  local pid
  pid=$(pgrep -f -- "kafka.Kafka $NDIR/server.properties" | head -n 1) || return 1
  [[ -n $pid ]] && echo "$pid" >"$PIDFILE" && running
}

# The recorded pid still exists and is no zombie: right after the launch it is the subshell that
# has not exec'd java yet (its command line is not the JVM's).
alive() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ -n $pid && -r /proc/$pid/stat && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

bootstrap() { sed -n 's|^advertised.listeners=PLAINTEXT://\([^,]*\).*|\1|p' "$NDIR/server.properties"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

log4j_props() {  # file, target (a file name or "stderr"), root level
  if [[ $VERSION == 3.* ]]; then
    if [[ $2 == stderr ]]; then
      printf '%s\n' "log4j.rootLogger=$3, out" "log4j.appender.out=org.apache.log4j.ConsoleAppender" \
        "log4j.appender.out.Target=System.err"
    else
      printf '%s\n' "log4j.rootLogger=$3, out" "log4j.appender.out=org.apache.log4j.FileAppender" \
        "log4j.appender.out.File=$2"
    fi >"$1"
    printf '%s\n' "log4j.appender.out.layout=org.apache.log4j.PatternLayout" \
      "log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n" \
      "log4j.logger.kafka.request.logger=WARN" >>"$1"
  else  # Kafka 4 logs to log4j 2
    if [[ $2 == stderr ]]; then
      printf '%s\n' "appender.out.type=Console" "appender.out.target=SYSTEM_ERR"
    else
      printf '%s\n' "appender.out.type=File" "appender.out.fileName=$2"
    fi >"$1"
    printf '%s\n' "appender.out.name=OUT" "appender.out.layout.type=PatternLayout" \
      "appender.out.layout.pattern=[%d] %p %m (%c)%n" "rootLogger.level=$3" \
      "rootLogger.appenderRef.out.ref=OUT" "logger.request.name=kafka.request.logger" \
      "logger.request.level=WARN" >>"$1"
  fi
}

log_flags() {  # the JVM flags pointing both log4j generations at a file
  echo "-Dlog4j.configuration=file:$1 -Dlog4j2.configurationFile=$1"
}

# Runs a Kafka CLI class (StorageTool, TopicCommand, console producer/consumer...), logging
# warnings only and to stderr, so stdout stays clean (e.g. for random-uuid).
kjava() {
  local props="$KDIR/tools-log4j-$VERSION.properties"
  [[ -f $props ]] || log4j_props "$props" stderr WARN
  # shellcheck disable=SC2046  # the flags are deliberately word-split
  java $(log_flags "$props") -cp "$LIBS/*" "$@"
}

fetch_jars() {
  # The marker holds the pom's checksum: editing the pom (e.g. a version bump) triggers a re-fetch.
  local want; want=$(sha256sum <"$POM")
  [[ -f $LIBS/.complete && $(cat "$LIBS/.complete") == "$want" ]] && return 0
  command -v mvn >/dev/null || die "mvn not found (apt-get install -y maven)"
  echo "Fetching Kafka $VERSION jars with Maven into $LIBS ..."
  rm -rf "$LIBS" "$LIBS.tmp"
  mvn -q -B -f "$POM" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIBS.tmp" >"$KDIR/mvn.log" 2>&1 \
    || { tail -n 30 "$KDIR/mvn.log" >&2; die "Maven could not fetch the jars (see $KDIR/mvn.log)"; }
  echo "$want" >"$LIBS.tmp/.complete"
  mv "$LIBS.tmp" "$LIBS"  # atomic: an interrupted download never looks complete
}

# A CA, the brokers' key and certificate (PKCS12, SAN 127.0.0.1 and localhost) and a client
# certificate for mTLS (client.pem, client.key), both signed by it; made once per DIR. Clients
# trust DIR/tls/ca.pem.
make_tls() {
  [[ -f $TLS/client.pem ]] && return 0
  command -v openssl >/dev/null || die "openssl not found (apt-get install -y openssl)"
  mkdir -p "$TLS.tmp"
  (
    cd "$TLS.tmp"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=callpulse local CA" \
      -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key -out broker.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile san.ext -out broker.pem
    openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem \
      -passout pass:callpulse -out broker.p12
    openssl req -newkey rsa:2048 -nodes -subj "/CN=callpulse" -keyout client.key -out client.csr
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
      -out client.pem
  ) >"$KDIR/tls.log" 2>&1 || { cat "$KDIR/tls.log" >&2; die "openssl could not make the certificates"; }
  rm -rf "$TLS"; mv "$TLS.tmp" "$TLS"
}

voters() {
  local i out=""
  for i in $(seq "$BROKERS"); do node "$i"; out+="${out:+,}$i@127.0.0.1:$NCPORT"; done
  echo "$out"
}

write_config() {  # node I's config, rewritten on every start so port changes take effect
  local quorum; quorum=$(voters); node "$1"
  local replicas=$((BROKERS < 3 ? BROKERS : 3)) isr=$((BROKERS < 2 ? 1 : 2))
  local listeners="PLAINTEXT://127.0.0.1:$NPORT" protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if [[ $SASL_SSL == 1 ]]; then
    listeners+=",SASL_SSL://127.0.0.1:$NSPORT"; protocols+=",SASL_SSL:SASL_SSL"
  fi
  cat >"$NDIR/server.properties" <<EOF
process.roles=broker,controller
node.id=$NODE
controller.quorum.voters=$quorum
controller.listener.names=CONTROLLER
listeners=$listeners,CONTROLLER://127.0.0.1:$NCPORT
advertised.listeners=$listeners
listener.security.protocol.map=$protocols
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=1
# callpulse owns its topics (\`callpulse topics create\`): nothing may appear by accident
auto.create.topics.enable=false
default.replication.factor=$replicas
offsets.topic.replication.factor=$replicas
transaction.state.log.replication.factor=$replicas
transaction.state.log.min.isr=$isr
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
  if ((BROKERS > 1)); then  # a dead node is fenced and its partitions move within ~3 s
    printf '%s\n' "broker.heartbeat.interval.ms=500" "broker.session.timeout.ms=3000" \
      >>"$NDIR/server.properties"
  fi
  if [[ $SASL_SSL == 1 ]]; then
    cat >>"$NDIR/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/broker.p12
ssl.keystore.password=callpulse
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
listener.name.sasl_ssl.ssl.client.auth=$CLIENT_AUTH
EOF
  fi
  log4j_props "$NDIR/log4j.properties" "$LOG" INFO
}

fail_start() {
  echo "kafka.sh: $1; last lines of its logs:" >&2
  tail -n 40 "$LOG" "$NDIR/stdout.log" >&2 2>/dev/null || true
  exit 1
}

launch() {  # node I: format once, then start the JVM in the background
  node "$1"
  mkdir -p "$NDIR"
  write_config "$1"
  if [[ ! -f $DATA/meta.properties ]]; then  # format the KRaft storage once
    local scram=()
    if [[ $SASL_SSL == 1 ]]; then
      scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]"
             --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]")
    fi
    kjava kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$NDIR/server.properties" \
      "${scram[@]}" >/dev/null
  fi
  if [[ -f $LOG ]]; then mv "$LOG" "$LOG.prev"; fi  # fresh log: the readiness grep sees this run only
  # setsid: own session, immune to the caller's Ctrl-C; 9>&-: don't leak the lock fd to the JVM.
  # shellcheck disable=SC2086,SC2046  # $HEAP and the log flags are deliberately word-split
  (cd "$NDIR" && exec setsid nohup java $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    $(log_flags "$NDIR/log4j.properties") -cp "$LIBS/*" \
    kafka.Kafka "$NDIR/server.properties" >"$NDIR/stdout.log" 2>&1 9>&- </dev/null) &
  echo $! >"$PIDFILE"
}

await_node() {  # node I: wait until it serves
  node "$1"
  local t0=$SECONDS
  until port_open "$NPORT" && grep -q "Kafka Server started" "$LOG" 2>/dev/null; do
    running || adopt || alive || { rm -f "$PIDFILE"; fail_start "Kafka node $NODE exited during startup"; }
    ((SECONDS - t0 < 90)) || { stop; fail_start "Kafka node $NODE not ready after 90 s (stopped)"; }
    sleep 0.5
  done
}

start() {
  command -v java >/dev/null || die "java not found (apt-get install -y openjdk-17-jre-headless)"
  local i todo=() t0=$SECONDS
  for i in $(seq "$BROKERS"); do
    node "$i"
    if running; then
      [[ $(bootstrap) == "127.0.0.1:$NPORT" ]] || die "already running on $(bootstrap), not port $NPORT: stop it first"
      echo "Kafka$( ((BROKERS == 1)) || echo " node $i") already running (pid $(cat "$PIDFILE")): bootstrap $(bootstrap)"
    else
      todo+=("$i")
    fi
  done
  ((${#todo[@]})) || return 0
  for i in "${todo[@]}"; do  # before any node starts: none is left running on a failure
    node "$i"
    port_open "$NPORT" && die "port $NPORT is already in use by another process (set CALLPULSE_KAFKA_PORT)"
    port_open "$NCPORT" && die "controller port $NCPORT is already in use (set CALLPULSE_KAFKA_CONTROLLER_PORT)"
    if [[ $SASL_SSL == 1 ]] && port_open "$NSPORT"; then die "SASL_SSL port $NSPORT is already in use"; fi
  done
  fetch_jars
  [[ $SASL_SSL == 1 ]] && make_tls
  [[ -f $KDIR/cluster.id ]] || kjava kafka.tools.StorageTool random-uuid >"$KDIR/cluster.id"
  CLUSTER_ID=$(cat "$KDIR/cluster.id")
  for i in "${todo[@]}"; do launch "$i"; done  # all first: a quorum needs a majority up
  for i in "${todo[@]}"; do await_node "$i"; done
  local servers=() sasl=()
  for i in $(seq "$BROKERS"); do node "$i"; servers+=("127.0.0.1:$NPORT"); sasl+=("127.0.0.1:$NSPORT"); done
  if ((BROKERS == 1)); then
    node 1; echo "Kafka started (pid $(cat "$PIDFILE")) in $((SECONDS - t0)) s: bootstrap 127.0.0.1:$PORT"
  else
    echo "Kafka cluster of $BROKERS started in $((SECONDS - t0)) s: bootstrap $(IFS=,; echo "${servers[*]}")"
  fi
  if [[ $SASL_SSL == 1 ]]; then
    echo "SASL_SSL: bootstrap $(IFS=,; echo "${sasl[*]}"), CA $TLS/ca.pem, user $SASL_USER"
  fi
}

stop() {
  local i pids=()
  for i in $(seq "$BROKERS"); do
    node "$i"
    if running; then pids+=("$(cat "$PIDFILE")"); else rm -f "$PIDFILE"; fi
  done
  if ((${#pids[@]} == 0)); then echo "Kafka not running"; return; fi
  # All at once: a node stopped after the others would wait for a quorum that is gone.
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 60); do  # up to 30 s
    local left=0
    for i in $(seq "$BROKERS"); do node "$i"; if running; then left=1; fi; done
    ((left)) || break
    sleep 0.5
  done
  for i in $(seq "$BROKERS"); do
    node "$i"
    if running; then echo "Kafka node $i did not stop in 30 s; killing it" >&2; kill -KILL "$(cat "$PIDFILE")"; fi
    for _ in $(seq 50); do running || break; sleep 0.1; done
    rm -f "$PIDFILE"
  done
  echo "Kafka stopped"
}

kill_node() {
  [[ ${1:-} =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= BROKERS)) || die "usage: kafka.sh kill NODE (1..$BROKERS)"
  node "$1"
  running || die "node $1 is not running"
  kill -KILL "$(cat "$PIDFILE")"
  for _ in $(seq 50); do running || break; sleep 0.1; done
  rm -f "$PIDFILE"
  echo "Kafka node $1 killed"
}

status() {
  local i up=0
  for i in $(seq "$BROKERS"); do
    node "$i"
    running || continue
    up=$((up + 1))
    echo "Kafka$( ((BROKERS == 1)) || echo " node $i") running (pid $(cat "$PIDFILE")): bootstrap $(bootstrap)"
  done
  if ((up == 0)); then echo "Kafka not running"; return 3; fi
  if ((BROKERS == 1)); then return 0; fi
  ((up == BROKERS)) || return 4
}

mkdir -p "$KDIR"
case "${1:-}" in
  run) shift; [[ $# -ge 1 ]] || die "usage: kafka.sh run CLASS [ARGS...]"; [[ -f $LIBS/.complete ]] || fetch_jars; kjava "$@"; exit ;;
  status) status; exit ;;
esac
# start/stop/reset/kill are serialised (e.g. `make -j`) with a lock file.
exec 9>"$KDIR/.lock"
flock 9
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  kill) kill_node "${2:-}" ;;
  reset)
    stop
    for i in $(seq "$BROKERS"); do node "$i"; rm -rf "$DATA" "$LOG" "$LOG.prev" "$NDIR/stdout.log"; done
    rm -f "$KDIR/cluster.id"; echo "Kafka data deleted (jars kept)" ;;
  *) die "usage: kafka.sh start|stop|status|reset|kill NODE|run CLASS [ARGS...]" ;;
esac
