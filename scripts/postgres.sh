#!/usr/bin/env bash
# A throwaway PostgreSQL 15 + pgvector server on 127.0.0.1, for spart's pgvector tests and examples.
#
#   scripts/postgres.sh start    install what is missing, start the server, print its URL (idempotent)
#   scripts/postgres.sh url      print the URL of the running server
#   scripts/postgres.sh status   say whether it runs (exit 0) or not (exit 3)
#   scripts/postgres.sh stop     stop it and delete its data directory (idempotent)
#   scripts/postgres.sh install  only install PostgreSQL 15 and pgvector
#
# What is installed (Debian, as root; see docs/serving.md for why this route and what it costs):
#   - PostgreSQL 15 server binaries (postgresql-15) when /usr/lib/postgresql/15/bin has none;
#   - pgvector, when PostgreSQL has no `vector` extension: Debian 12 packages none, so Debian 13's source
#     package `pgvector` is fetched with apt (a private source list in a temp dir; the system's apt setup is
#     not changed) and built against PostgreSQL 15 with its headers (postgresql-server-dev-15).
# The server: a fresh data directory under $SPART_PG_STATE (default ${TMPDIR:-/tmp}/spart-postgres-<uid>),
# trust authentication, listening on 127.0.0.1 only, on the first free port from $SPART_PG_PORT (default
# 54329), durability off (fsync=off: the data is thrown away). initdb refuses root, so as root the server
# runs as the `postgres` user. The database `spart` has the `vector` extension created.
set -euo pipefail

PG_MAJOR=15
PG_BIN=${SPART_PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}
STATE=${SPART_PG_STATE:-${TMPDIR:-/tmp}/spart-postgres-$(id -u)}
DATA=$STATE/data
FIRST_PORT=${SPART_PG_PORT:-54329}
DB_USER=spart
DB_NAME=spart

die() { echo "postgres.sh: error: $*" >&2; exit 1; }
say() { echo "postgres.sh: $*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the owner of the data directory (postgres when we are root).
as_owner() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

APT_UPDATED=0
apt_install() {
  is_root || die "missing $*: install it (apt-get install $*) or run this script as root"
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it: install PostgreSQL $PG_MAJOR and pgvector yourself"
  if [ "$APT_UPDATED" -eq 0 ]; then
    say "apt-get update"
    apt-get update -q >/dev/null
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

has_pgvector() { [ -f "$("$PG_BIN/pg_config" --sharedir)/extension/vector.control" ]; }

build_pgvector() (  # a subshell: its EXIT trap removes the work directory
  local work lists
  # The server headers: pgxs.mk alone is not enough (Debian ships it in postgresql-client, without postgres.h).
  [ -f "$("$PG_BIN/pg_config" --pgxs)" ] && [ -f "$("$PG_BIN/pg_config" --includedir-server)/postgres.h" ] \
    || apt_install "postgresql-server-dev-$PG_MAJOR"
  command -v gcc >/dev/null && command -v make >/dev/null || apt_install build-essential
  command -v dpkg-source >/dev/null || apt_install dpkg-dev
  is_root || die "pgvector must be installed into PostgreSQL's directories: run this script as root once"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  lists=$work/apt
  mkdir -p "$lists/lists/partial" "$lists/cache" "$lists/sources"
  cat >"$lists/sources/debian-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local apt_opts=(-q -o "Dir::Etc::SourceList=/dev/null" -o "Dir::Etc::SourceParts=$lists/sources"
    -o "Dir::State::Lists=$lists/lists" -o "Dir::Cache=$lists/cache" -o "APT::Sandbox::User=root")
  say "fetching Debian's pgvector source package"
  apt-get "${apt_opts[@]}" update >/dev/null || die "cannot read Debian's source index for pgvector"
  (cd "$work" && apt-get "${apt_opts[@]}" source --download-only pgvector >/dev/null) \
    || die "cannot download Debian's pgvector source package"
  (cd "$work" && dpkg-source -q -x pgvector_*.dsc src >"$work/unpack.log" 2>&1) || die "cannot unpack the pgvector source package"
  say "building pgvector $(sed -n 's/^Version: //p' "$work"/pgvector_*.dsc) against PostgreSQL $PG_MAJOR"
  # OPTFLAGS= as Debian builds it: no -march=native, so the library runs on any x86-64 machine.
  make -C "$work/src" -s -j"$(nproc)" PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS= >"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log" >&2; die "pgvector build failed"; }
  make -C "$work/src" -s PG_CONFIG="$PG_BIN/pg_config" OPTFLAGS= install >>"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log" >&2; die "pgvector install failed"; }
)

install() {
  [ -x "$PG_BIN/postgres" ] || apt_install "postgresql-$PG_MAJOR"
  [ -x "$PG_BIN/postgres" ] || die "no PostgreSQL server binaries in $PG_BIN"
  has_pgvector || build_pgvector
  has_pgvector || die "pgvector is still missing from $("$PG_BIN/pg_config" --sharedir)/extension"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { [ -f "$STATE/port" ] && [ -d "$DATA" ] && as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

url() { echo "postgresql://$DB_USER@127.0.0.1:$(cat "$STATE/port")/$DB_NAME"; }

start() {
  if running; then url; return; fi
  install
  [ -d "$STATE" ] && stop_server  # a stale directory from a crashed run
  local port=$FIRST_PORT
  while port_in_use "$port"; do
    port=$((port + 1))
    [ "$port" -lt $((FIRST_PORT + 50)) ] || die "no free port in $FIRST_PORT..$((FIRST_PORT + 49)); set SPART_PG_PORT"
  done
  mkdir -p "$STATE"
  if is_root; then
    id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the server as (initdb refuses root)"
    chown postgres: "$STATE"
  fi
  as_owner "$PG_BIN/initdb" -D "$DATA" -U "$DB_USER" --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$STATE/initdb.log" 2>&1 || { cat "$STATE/initdb.log" >&2; die "initdb failed"; }
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$STATE/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || { tail -20 "$STATE/server.log" >&2; die "the server did not start (log above)"; }
  echo "$port" >"$STATE/port"
  "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "postgresql://$DB_USER@127.0.0.1:$port/postgres" \
    -c "CREATE DATABASE $DB_NAME" >/dev/null || die "cannot create database $DB_NAME"
  "$PG_BIN/psql" -q -X -v ON_ERROR_STOP=1 "$(url)" -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null \
    || die "cannot create the vector extension"
  say "PostgreSQL $PG_MAJOR + pgvector running on 127.0.0.1:$port (data in $DATA)"
  url
}

stop_server() {
  if [ -d "$DATA" ] && as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
  fi
  rm -rf "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) if [ -d "$STATE" ]; then stop_server; say "stopped"; else say "not running"; fi ;;
  url) running || die "not running; start it with scripts/postgres.sh start"; url ;;
  status) if running; then echo "running: $(url)"; else echo "not running"; exit 3; fi ;;
  install) install; say "PostgreSQL $PG_MAJOR and pgvector are installed" ;;
  *) echo "usage: $0 start|stop|url|status|install" >&2; exit 2 ;;
esac
