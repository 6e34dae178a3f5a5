#!/usr/bin/env bash
# Runs every Garde test against real services: Redis, PostgreSQL, OpenLDAP
# (slapd, started by the tests themselves) and Chromium.
#
# It uses Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 when they
# answer; otherwise it installs them from Debian packages (when missing) and
# starts private instances under .garde-test/ for the duration of the run.
# slapd, ldap-utils and chromium are installed from Debian packages when
# missing. Extra arguments go to `go test` (e.g. -run TestEndToEnd).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="$root/.garde-test"
mkdir -p "$state"

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

apt_updated=""
install_pkgs() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

command -v go >/dev/null || { log "Go 1.26 is required (https://go.dev/dl/)"; exit 1; }

# OpenLDAP server and client tools (the tests start their own slapd), and
# Chromium for browser tests.
if ! [ -x /usr/sbin/slapd ] || ! command -v ldapsearch >/dev/null || ! command -v chromium >/dev/null; then
  install_pkgs slapd ldap-utils chromium
fi

cleanup=()
trap 'for c in "${cleanup[@]}"; do eval "$c" || true; done' EXIT

# Redis.
redis_addr=${GARDE_TEST_REDIS_ADDR:-127.0.0.1:6379}
redis_ping() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ! redis_ping "$redis_addr"; then
  command -v redis-server >/dev/null || install_pkgs redis-server
  redis_addr=127.0.0.1:6391
  log "starting a private Redis on $redis_addr"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6391 --save "" --appendonly no \
    --dir "$state" --pidfile "$state/redis.pid" --logfile "$state/redis.log"
  cleanup+=("kill \$(cat '$state/redis.pid')")
  for _ in $(seq 50); do redis_ping "$redis_addr" && break; sleep 0.1; done
fi
export GARDE_TEST_REDIS_ADDR=$redis_addr

# PostgreSQL.
pg_dsn=${GARDE_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
pg_ready() { command -v pg_isready >/dev/null && pg_isready -q -d "$1"; }
if ! pg_ready "$pg_dsn"; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$bindir" ]; then install_pkgs postgresql; bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1); fi
  pgdata="$state/pgdata"
  run_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    mkdir -p "$pgdata"; [ "$(id -u)" -eq 0 ] && chown postgres "$pgdata" "$state"
    run_pg "$bindir/initdb" -D "$pgdata" -U postgres -A trust >/dev/null
  fi
  log "starting a private PostgreSQL on 127.0.0.1:5439"
  run_pg "$bindir/pg_ctl" -D "$pgdata" -l "$pgdata/log" -o "-p 5439 -k /tmp -c listen_addresses=127.0.0.1" -w start >/dev/null
  cleanup+=("run_pg '$bindir/pg_ctl' -D '$pgdata' -m fast stop >/dev/null")
  pg_dsn="postgres://postgres@127.0.0.1:5439/postgres?sslmode=disable"
fi
export GARDE_TEST_POSTGRES_DSN=$pg_dsn

export GARDE_TEST_REQUIRE_SERVICES=1
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

log "go vet"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.garde-test/*'))
if [ -n "$unformatted" ]; then log "not gofmt-formatted:"; echo "$unformatted"; exit 1; fi

log "go test (Redis $GARDE_TEST_REDIS_ADDR, PostgreSQL ${GARDE_TEST_POSTGRES_DSN%%\?*})"
go test -count=1 -race -timeout 12m "$@" ./...
