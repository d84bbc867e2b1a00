#!/usr/bin/env bash
# Stop the project-local MariaDB and Redis started by scripts/db-up.sh. Data stays in $TT_VAR.
#
#   bash scripts/db-down.sh
#
# Each daemon is asked to shut down cleanly (mariadb-admin shutdown over the project socket,
# redis-cli SHUTDOWN, which writes the RDB snapshot), falling back to SIGTERM, then the script
# waits (bounded, TT_DB_WAIT_SECS, default 60 s) for the process to go. Nothing running is not
# an error. Only processes recorded in the project's own pid files are touched.

set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=scripts/proc.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/proc.sh"

WAIT_SECS="${TT_DB_WAIT_SECS:-60}"
[[ "$WAIT_SECS" =~ ^[0-9]+$ ]] || WAIT_SECS=60

say() { printf 'db-down: %s\n' "$*"; }
err() { printf 'db-down: ERROR: %s\n' "$*" >&2; }

# Wait for pid $2 of service $1 to exit; SIGTERM once half the time has gone.
wait_gone() {
    local name="$1" pid="$2" deadline=$((SECONDS + WAIT_SECS)) termed=0
    while is_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            err "$name (pid $pid) is still running after ${WAIT_SECS}s; see its log under $TT_VAR"
            return 1
        fi
        if ((!termed && SECONDS >= deadline - WAIT_SECS / 2)); then
            kill -TERM "$pid" 2>/dev/null || true
            termed=1
        fi
        sleep 0.2
    done
}

stop_mysql() {
    local pid admin
    if ! pid="$(live_pid "$TT_MYSQL_PIDFILE" '^(mariadbd|mysqld)$')"; then
        say "MariaDB is not running (no live pid in $TT_MYSQL_PIDFILE)"
        rm -f -- "$TT_MYSQL_PIDFILE"
        return
    fi
    if admin="$(find_bin mariadb-admin mysqladmin)" &&
        "$admin" --defaults-file="$TT_MYSQL_CNF" --user="$(id -un)" --connect-timeout=5 \
            shutdown >/dev/null 2>&1; then
        :
    else
        say "mariadb-admin shutdown failed, sending SIGTERM to pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
    fi
    wait_gone MariaDB "$pid" || return 1
    rm -f -- "$TT_MYSQL_PIDFILE"
    say "MariaDB stopped (was pid $pid); data kept in $TT_MYSQL_DATADIR"
}

stop_redis() {
    local pid cli
    if ! pid="$(live_pid "$TT_REDIS_PIDFILE" '^redis-server')"; then
        say "Redis is not running (no live pid in $TT_REDIS_PIDFILE)"
        rm -f -- "$TT_REDIS_PIDFILE"
        return
    fi
    # SHUTDOWN saves dump.rdb first (save rules are configured). The connection just closes on
    # success, so judge by the process going away rather than by redis-cli's output.
    # SIGTERM makes Redis save and exit as well.
    if cli="$(find_bin redis-cli)"; then
        "$cli" -h 127.0.0.1 -p "$TT_REDIS_PORT" shutdown >/dev/null 2>&1 || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    wait_gone Redis "$pid" || return 1
    rm -f -- "$TT_REDIS_PIDFILE"
    say "Redis stopped (was pid $pid); data kept in $TT_REDIS_DIR"
}

status=0
stop_mysql || status=1
stop_redis || status=1
exit "$status"
