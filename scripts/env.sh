# shellcheck shell=bash
# Settings of the project-local MariaDB and Redis: `source scripts/env.sh` (from bash).
#
# Used by scripts/db-up.sh and scripts/db-down.sh, and read (same names, same defaults) by the
# integration tests, e.g. tests/db_seed.rs. Every TT_* setting below can be overridden from the
# environment; what is derived from them (paths of sockets, pid files, ...) cannot, so that it
# always follows TT_VAR. Sourcing this file changes no shell options and prints nothing.

# The checkout this file belongs to (scripts/..), whatever the caller's working directory.
TT_ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Where the databases keep their data, logs, pid files and sockets (ignored by git).
: "${TT_VAR:=$TT_ROOT/var}"
case "$TT_VAR" in /*) ;; *) TT_VAR="$PWD/$TT_VAR" ;; esac # the daemons need absolute paths

# MariaDB: listens on 127.0.0.1 only, on a non-default port so that a system MariaDB on 3306
# is left alone. TT_MYSQL_USER/TT_MYSQL_PASSWORD is the account the servers and tests use;
# it has all privileges on TT_MYSQL_DB and nothing else.
: "${TT_MYSQL_HOST:=127.0.0.1}"
: "${TT_MYSQL_PORT:=13306}"
: "${TT_MYSQL_DB:=teamtalk}"
: "${TT_MYSQL_USER:=teamtalk}"
: "${TT_MYSQL_PASSWORD:=12345}"

# Redis: likewise 127.0.0.1 only, non-default port. db_proxy uses databases 1..5; the tests
# own database 15.
: "${TT_REDIS_HOST:=127.0.0.1}"
: "${TT_REDIS_PORT:=16379}"

# Derived paths (always recomputed from TT_VAR).
TT_MYSQL_DIR="$TT_VAR/mysql"
TT_MYSQL_DATADIR="$TT_MYSQL_DIR/data"
TT_MYSQL_CNF="$TT_MYSQL_DIR/my.cnf" # server and client settings: mariadb --defaults-file=...
TT_MYSQL_SOCKET="$TT_MYSQL_DIR/mysqld.sock"
TT_MYSQL_PIDFILE="$TT_MYSQL_DIR/mysqld.pid"
TT_MYSQL_LOG="$TT_MYSQL_DIR/mysqld.log"
TT_REDIS_DIR="$TT_VAR/redis"
TT_REDIS_CONF="$TT_REDIS_DIR/redis.conf"
TT_REDIS_PIDFILE="$TT_REDIS_DIR/redis.pid"
TT_REDIS_LOG="$TT_REDIS_DIR/redis.log"

export TT_ROOT TT_VAR \
    TT_MYSQL_HOST TT_MYSQL_PORT TT_MYSQL_DB TT_MYSQL_USER TT_MYSQL_PASSWORD \
    TT_REDIS_HOST TT_REDIS_PORT \
    TT_MYSQL_DIR TT_MYSQL_DATADIR TT_MYSQL_CNF TT_MYSQL_SOCKET TT_MYSQL_PIDFILE TT_MYSQL_LOG \
    TT_REDIS_DIR TT_REDIS_CONF TT_REDIS_PIDFILE TT_REDIS_LOG
