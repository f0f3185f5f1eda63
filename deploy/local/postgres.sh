#!/usr/bin/env bash
# A private PostgreSQL cluster for local tests, in <repo>/.cache/postgres/ (data/, run/, postgres.log).
# Usage: postgres.sh start|stop|status|reset
# Env: CALLPULSE_PG_PORT (default 15432), CALLPULSE_PG_BIN (dir holding initdb/pg_ctl; optional),
# CALLPULSE_PG_DIR (default <repo>/.cache/postgres: a second cluster beside the first needs its own).
# Listens on 127.0.0.1 only with trust auth (any password works): for tests, never for real data.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PGDIR="${CALLPULSE_PG_DIR:-$ROOT/.cache/postgres}"
DATA="$PGDIR/data"
SOCK="$PGDIR/run"
LOG="$PGDIR/postgres.log"
PORT="${CALLPULSE_PG_PORT:-15432}"

die() { echo "postgres.sh: $*" >&2; exit 1; }

pg_bin() {  # newest Debian server install (/usr/lib/postgresql/<ver>/bin), or the override
  local d
  for d in ${CALLPULSE_PG_BIN:-} $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -rV); do
    if [[ -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return 0; fi
  done
  return 1
}

# PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` user.
# 9>&-: the server must not inherit the lock fd, or it would hold the lock for its whole life.
as_pg() {
  if ((EUID == 0)); then (cd / && runuser -u postgres -- "$@" 9>&-); else "$@" 9>&-; fi
}

running() { as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

ensure_installed() {
  BIN=$(pg_bin) && return 0
  ((EUID == 0)) || die "PostgreSQL server not found; install it: sudo apt-get install -y postgresql"
  echo "Installing PostgreSQL with apt-get ..."
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  BIN=$(pg_bin) || die "PostgreSQL installed but initdb/pg_ctl not found under /usr/lib/postgresql"
}

# As root: give the cluster dir to `postgres`, and make sure that user can reach it, i.e. has
# search (x) permission on every parent directory (e.g. a repo under a 0700 /root or home dir).
prepare_dirs() {
  mkdir -p "$DATA" "$SOCK"
  ((EUID == 0)) || return 0
  id postgres >/dev/null 2>&1 || die "no 'postgres' OS user to run the server as"
  local d="" part parts
  IFS=/ read -ra parts <<<"${PGDIR#/}"
  for part in "${parts[@]}"; do
    d+="/$part"
    if ! runuser -u postgres -- test -x "$d"; then echo "chmod o+x $d (so user postgres can reach $PGDIR)"; chmod o+x "$d"; fi
  done
  chown -R postgres:postgres "$PGDIR"
}

start() {
  ensure_installed
  # The Unix socket path is limited to 107 bytes.
  ((${#SOCK} + 20 <= 107)) || die "socket dir path too long ($SOCK): move the repo to a shorter path"
  prepare_dirs
  if [[ ! -f $DATA/PG_VERSION ]]; then
    echo "Creating the cluster in $DATA ..."
    as_pg "$BIN/initdb" -D "$DATA" --auth=trust -U postgres --encoding=UTF8 --locale=C >"$PGDIR/initdb.log" 2>&1 \
      || { tail -n 20 "$PGDIR/initdb.log" >&2; die "initdb failed (see $PGDIR/initdb.log)"; }
  fi
  grep -q "^include_if_exists = 'callpulse.conf'" "$DATA/postgresql.conf" \
    || echo "include_if_exists = 'callpulse.conf'" >>"$DATA/postgresql.conf"
  if running; then
    local now; now=$(sed -n 4p "$DATA/postmaster.pid")  # line 4 of postmaster.pid is the port
    [[ $now == "$PORT" ]] || die "already running on port $now, not $PORT: stop it first"
    echo "PostgreSQL already running on 127.0.0.1:$PORT"
  else
    # Our settings, rewritten on each start (port may change); fsync off etc. is fine for tests.
    cat >"$DATA/callpulse.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    ((EUID != 0)) || chown postgres:postgres "$DATA/callpulse.conf"
    as_pg "$BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 -s \
      || { tail -n 20 "$LOG" >&2; die "PostgreSQL failed to start (see $LOG)"; }
  fi
  local t0=$SECONDS
  until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; do
    ((SECONDS - t0 < 30)) || die "PostgreSQL not accepting connections on 127.0.0.1:$PORT after 30 s"
    sleep 0.5
  done
  # Role and databases, idempotently (CREATE DATABASE cannot run in a DO block: \gexec instead).
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'callpulse') THEN
    CREATE ROLE callpulse LOGIN CREATEDB PASSWORD 'callpulse';
  END IF;
END $$;
SELECT format('CREATE DATABASE %I OWNER callpulse', db)
  FROM unnest(ARRAY['callpulse', 'callpulse_test']) AS db
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = db)
\gexec
SQL
  echo "PostgreSQL ready: postgresql://callpulse:callpulse@127.0.0.1:$PORT/callpulse" \
    "(tests: .../callpulse_test)"
}

stop() {
  BIN=$(pg_bin) || { echo "PostgreSQL not installed"; return 0; }
  if [[ -f $DATA/PG_VERSION ]] && running; then
    as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -s
    echo "PostgreSQL stopped"
  else
    echo "PostgreSQL not running"
  fi
}

mkdir -p "$PGDIR"
if [[ ${1:-} == status ]]; then
  if BIN=$(pg_bin) && [[ -f $DATA/PG_VERSION ]] && running; then
    echo "PostgreSQL running on 127.0.0.1:$(sed -n 4p "$DATA/postmaster.pid")"; exit 0
  fi
  echo "PostgreSQL not running"; exit 3
fi
exec 9>"$PGDIR/.lock"  # serialise concurrent start/stop (e.g. `make -j`)
flock 9
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  reset) stop; rm -rf "$DATA" "$LOG" "$PGDIR/initdb.log"; echo "PostgreSQL data deleted" ;;
  *) die "usage: postgres.sh start|stop|status|reset" ;;
esac
