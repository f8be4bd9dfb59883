#!/usr/bin/env bash
# Installs PostgreSQL 15 with pgvector on Debian bookworm, then starts a throwaway cluster for the tests.
# Idempotent: every step checks before it acts. pgvector is not packaged for bookworm, so it is built from the
# source package of the next Debian release (trixie). No mirror address is written here: it is read from the
# machine's own apt sources.
#
#   scripts/setup-postgres.sh            install only
#   scripts/setup-postgres.sh --start    install, then start a cluster on $TILEVEC_PG_PORT (default 55432)
#                                        and print its URL (also written to $TILEVEC_PG_DIR/url)
#   scripts/setup-postgres.sh --replica  as --start, then also a streaming replica of it (a hot standby) on
#                                        $TILEVEC_PG_REPLICA_PORT (default the port + 1); prints the replica's URL
set -euo pipefail

PG_MAJOR=15
PORT="${TILEVEC_PG_PORT:-55432}"
REPLICA_PORT="${TILEVEC_PG_REPLICA_PORT:-$((PORT + 1))}"
DIR="${TILEVEC_PG_DIR:-/tmp/tilevec-pg}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "[setup-postgres] $*" >&2; }

apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The first Debian mirror URI configured on this machine (deb822 or one-line format).
debian_mirror() {
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v -- '-security' | grep -i debian | head -n1 || true)
  fi
  [ -n "$uri" ] || { log "no Debian mirror found in /etc/apt/sources.list*"; exit 1; }
  echo "$uri"
}

pg_bin="/usr/lib/postgresql/$PG_MAJOR/bin"
apt_install "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" build-essential dpkg-dev ca-certificates

# pgvector, unless this server already has it.
if [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/vector.control" ]; then
  src_list=/etc/apt/sources.list.d/tilevec-trixie-src.list
  if [ ! -f "$src_list" ]; then
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(debian_mirror) trixie main" | $SUDO tee "$src_list" >/dev/null
    apt_updated=""
  fi
  [ -n "$apt_updated" ] || { $SUDO apt-get update -qq; apt_updated=1; }
  build=$(mktemp -d)
  log "building pgvector from Debian's trixie source package in $build"
  ( cd "$build" && apt-get source -qq --download-only pgvector >/dev/null 2>&1 && dpkg-source -x ./pgvector_*.dsc src >/dev/null \
    && cd src && make -s PG_CONFIG="$pg_bin/pg_config" >/dev/null && $SUDO make -s install PG_CONFIG="$pg_bin/pg_config" >/dev/null )
  rm -rf "$build"
  log "pgvector installed"
fi

case "${1:-}" in --start | --replica) ;; *) exit 0 ;; esac

# A throwaway cluster owned by the postgres user, trusting local connections; nothing here is for production.
run_as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -s /bin/bash -c "$*"; else sudo -u postgres bash -c "$*"; fi; }
if ! "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  $SUDO mkdir -p "$DIR"; $SUDO chown postgres "$DIR"
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    run_as_postgres "'$pg_bin/initdb' -D '$DIR/data' -U postgres -A trust -E UTF8 >/dev/null"
  fi
  run_as_postgres "'$pg_bin/pg_ctl' -D '$DIR/data' -l '$DIR/log' -w -o \"-p $PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null"
fi
url="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "$url" | $SUDO tee "$DIR/url" >/dev/null
[ "${1:-}" = "--replica" ] || { echo "$url"; exit 0; }

# A hot standby streaming from the cluster above: initdb's trust rules already admit local replication.
if ! "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$REPLICA_PORT"; then
  if [ ! -f "$DIR/replica/PG_VERSION" ]; then
    run_as_postgres "'$pg_bin/pg_basebackup' -h 127.0.0.1 -p $PORT -U postgres -D '$DIR/replica' -R -X stream"
  fi
  run_as_postgres "'$pg_bin/pg_ctl' -D '$DIR/replica' -l '$DIR/replica.log' -w -o \"-p $REPLICA_PORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off\" start >/dev/null"
fi
replica_url="postgres://postgres@127.0.0.1:$REPLICA_PORT/postgres"
echo "$replica_url" | $SUDO tee "$DIR/replica-url" >/dev/null
echo "$replica_url"
