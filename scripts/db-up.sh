#!/usr/bin/env bash
# Start the project-local MariaDB and Redis that the servers and the integration tests use.
#
#   bash scripts/db-up.sh        (settings: scripts/env.sh; stop with scripts/db-down.sh)
#
# * Data, logs, pid files and sockets live under $TT_VAR (default: <repo>/var): var/mysql and
#   var/redis. Both daemons listen on 127.0.0.1 only, on non-default ports ($TT_MYSQL_PORT,
#   $TT_REDIS_PORT), and read only the config files written here, so a system MariaDB/Redis
#   (e.g. on 3306/6379) is never touched.
# * Installs mariadb-server, mariadb-client and redis-server with apt-get when their binaries
#   are missing.
# * Idempotent: an instance that is already running (pid file + live process + answers a ping)
#   is reused, the data directory is initialised only once, the database and the account are
#   created if missing, and sql/schema.sql, sql/migrate.sql and sql/seed.sql are re-applied
#   (all safe to load again; migrate.sql brings a database made by an earlier schema up to the
#   current one). If the port is already served by an instance this checkout did not start
#   (e.g. another clone's) and it accepts the application account / answers PING, it is shared
#   instead of failing; db-down.sh of this checkout then leaves it alone.
# * Exits non-zero with a message (and the tail of the relevant log) on any failure.
#
# Environment: the TT_* settings of scripts/env.sh, plus TT_DB_WAIT_SECS (default 60): how long
# to wait for a daemon to answer.

set -euo pipefail

# shellcheck source=scripts/env.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/env.sh"
# shellcheck source=scripts/proc.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/proc.sh"

WAIT_SECS="${TT_DB_WAIT_SECS:-60}"
SCHEMA_SQL="$TT_ROOT/sql/schema.sql"
MIGRATE_SQL="$TT_ROOT/sql/migrate.sql"
SEED_SQL="$TT_ROOT/sql/seed.sql"

say() { printf 'db-up: %s\n' "$*"; }
die() {
    printf 'db-up: ERROR: %s\n' "$*" >&2
    exit 1
}
# Print the last lines of a log file to stderr (for error messages).
log_tail() {
    if [[ -s "$1" ]]; then
        printf -- '---- last lines of %s ----\n' "$1" >&2
        tail -n "${2:-30}" -- "$1" >&2 || true
        printf -- '----\n' >&2
    fi
}

# ---------------------------------------------------------------------------------------------
# Settings check: they end up in config files and SQL, so reject anything surprising early.
is_port() { [[ "$1" =~ ^[0-9]+$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }
is_port "$TT_MYSQL_PORT" || die "TT_MYSQL_PORT='$TT_MYSQL_PORT' is not a TCP port"
is_port "$TT_REDIS_PORT" || die "TT_REDIS_PORT='$TT_REDIS_PORT' is not a TCP port"
[[ "$TT_MYSQL_PORT" != "$TT_REDIS_PORT" ]] || die "TT_MYSQL_PORT and TT_REDIS_PORT are both $TT_MYSQL_PORT"
[[ "$TT_MYSQL_DB" =~ ^[A-Za-z0-9_]{1,64}$ ]] ||
    die "TT_MYSQL_DB='$TT_MYSQL_DB': use letters, digits and _ only"
[[ "$TT_MYSQL_USER" =~ ^[A-Za-z0-9_]{1,32}$ ]] ||
    die "TT_MYSQL_USER='$TT_MYSQL_USER': use letters, digits and _ only"
[[ -n "$TT_MYSQL_PASSWORD" ]] || die "TT_MYSQL_PASSWORD is empty"
[[ "$TT_MYSQL_PASSWORD" != *[$'\n\r#']* ]] ||
    die "TT_MYSQL_PASSWORD must not contain a newline or '#' (the servers' conf format cannot hold it)"
[[ "$WAIT_SECS" =~ ^[0-9]+$ ]] || die "TT_DB_WAIT_SECS='$WAIT_SECS' is not a number of seconds"
# A unix socket path must fit in sun_path (108 bytes including the terminating NUL).
((${#TT_MYSQL_SOCKET} < 108)) ||
    die "socket path $TT_MYSQL_SOCKET is too long for a unix socket; set TT_VAR to a shorter path"
[[ -r "$SCHEMA_SQL" && -r "$MIGRATE_SQL" && -r "$SEED_SQL" ]] ||
    die "missing $SCHEMA_SQL, $MIGRATE_SQL or $SEED_SQL"

mkdir -p -- "$TT_MYSQL_DIR" "$TT_REDIS_DIR" || die "cannot create $TT_VAR"

# Serialise concurrent runs (e.g. two test jobs starting at once) on one lock file.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$TT_VAR/.db-up.lock"
    # Generous: the holder may be installing packages.
    flock -w 900 9 || die "another db-up.sh holds $TT_VAR/.db-up.lock"
fi

locate_binaries() {
    MARIADBD="$(find_bin mariadbd mysqld)" || return 1
    INSTALL_DB="$(find_bin mariadb-install-db mysql_install_db)" || return 1
    MARIADB="$(find_bin mariadb mysql)" || return 1
    MARIADB_ADMIN="$(find_bin mariadb-admin mysqladmin)" || return 1
    REDIS_SERVER="$(find_bin redis-server)" || return 1
    REDIS_CLI="$(find_bin redis-cli)" || return 1
}

if ! locate_binaries; then
    [[ "$(id -u)" -eq 0 ]] ||
        die "MariaDB/Redis binaries are missing and this is not root: install mariadb-server mariadb-client redis-server"
    command -v apt-get >/dev/null 2>&1 ||
        die "MariaDB/Redis binaries are missing and apt-get is not available"
    apt_log="$TT_VAR/apt.log"
    say "installing mariadb-server mariadb-client redis-server (apt-get; log: $apt_log)"
    export DEBIAN_FRONTEND=noninteractive
    if ! {
        apt-get update -q &&
            apt-get install -y -q --no-install-recommends \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                mariadb-server mariadb-client redis-server
    } >"$apt_log" 2>&1; then
        log_tail "$apt_log"
        die "apt-get failed to install mariadb-server mariadb-client redis-server"
    fi
    locate_binaries || die "packages installed, but the mariadbd/mariadb/redis-server binaries are still not found"
fi

# ---------------------------------------------------------------------------------------------
# Process helpers.

# True when something accepts TCP connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# MariaDB
MYSQLD_COMM='^(mariadbd|mysqld)$'
# The OS account the server runs as. mariadb-install-db gives root@localhost (and, for a
# non-root run, an account named like the OS user) unix_socket authentication, so this script
# administers the server through the project socket without any password.
ADMIN_USER="$(id -un)"
# The server runs as the invoking user; as root that means --user=root: the data lives in the
# checkout, which the mysql account may not even be able to reach, and this is a private
# development instance on 127.0.0.1. (Without root, mariadbd ignores --user with a warning.)
MYSQLD_USER_OPT=(--user="$ADMIN_USER")

write_mysql_cnf() {
    local tmp="$TT_MYSQL_CNF.tmp"
    cat >"$tmp" <<EOF
# Written by scripts/db-up.sh on every run; edit that script (or the TT_* settings) instead.
# Used by the project-local server and clients only: mariadbd/mariadb --defaults-file=<this>.
[mysqld]
datadir = $TT_MYSQL_DATADIR
socket = $TT_MYSQL_SOCKET
pid-file = $TT_MYSQL_PIDFILE
log-error = $TT_MYSQL_LOG
port = $TT_MYSQL_PORT
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
# db_proxy opens two pools of up to maxconncnt connections each, per process.
max_connections = 500
# Small footprint: this instance only serves development and tests (a few dozen tables).
table_open_cache = 400
innodb_buffer_pool_size = 128M
innodb_log_file_size = 48M

[client]
socket = $TT_MYSQL_SOCKET
port = $TT_MYSQL_PORT
default-character-set = utf8mb4
EOF
    mv -f -- "$tmp" "$TT_MYSQL_CNF"
}

mysql_ping() {
    "$MARIADB_ADMIN" --defaults-file="$TT_MYSQL_CNF" --user="$ADMIN_USER" \
        --connect-timeout=2 ping >/dev/null 2>&1
}

# Run SQL (stdin) as the admin account through the socket; $@ are extra client arguments.
mysql_admin() {
    "$MARIADB" --defaults-file="$TT_MYSQL_CNF" --user="$ADMIN_USER" --batch "$@"
}

# Run SQL as the application account, the way the servers connect: TCP to 127.0.0.1, password.
mysql_app() {
    MYSQL_PWD="$TT_MYSQL_PASSWORD" "$MARIADB" --defaults-file="$TT_MYSQL_CNF" \
        --protocol=tcp --host=127.0.0.1 --port="$TT_MYSQL_PORT" --user="$TT_MYSQL_USER" \
        --connect-timeout=5 --database="$TT_MYSQL_DB" --batch "$@"
}

# Wait until the server answers, or die. $1: pid of the server (or of its setsid wrapper).
wait_mysql() {
    local pid="$1" deadline=$((SECONDS + WAIT_SECS))
    until mysql_ping; do
        if ! is_alive "$pid"; then
            log_tail "$TT_MYSQL_LOG" 40
            die "MariaDB exited during startup (log: $TT_MYSQL_LOG)"
        fi
        if ((SECONDS >= deadline)); then
            log_tail "$TT_MYSQL_LOG" 40
            die "MariaDB (pid $pid) did not answer on $TT_MYSQL_SOCKET within ${WAIT_SECS}s (log: $TT_MYSQL_LOG)"
        fi
        sleep 0.5
    done
}

init_mysql_datadir() {
    local tmpdir="$TT_MYSQL_DATADIR.init" log="$TT_MYSQL_DIR/install-db.log"
    say "initialising MariaDB data directory $TT_MYSQL_DATADIR"
    # Initialise aside and rename at the end, so an interrupted run leaves no half-made datadir.
    rm -rf -- "$tmpdir"
    if ! "$INSTALL_DB" --defaults-file="$TT_MYSQL_CNF" --datadir="$tmpdir" \
        "${MYSQLD_USER_OPT[@]}" --auth-root-authentication-method=socket \
        --skip-test-db --skip-name-resolve >"$log" 2>&1; then
        log_tail "$log" 40
        log_tail "$TT_MYSQL_LOG" 20
        die "mariadb-install-db failed (log: $log)"
    fi
    mv -- "$tmpdir" "$TT_MYSQL_DATADIR"
    FRESH_DATADIR=1
}
FRESH_DATADIR=0
# 1 when the port is served by a MariaDB this checkout did not start (see start_mysql).
FOREIGN_MYSQL=0

start_mysql() {
    local pid
    write_mysql_cnf
    if pid="$(live_pid "$TT_MYSQL_PIDFILE" "$MYSQLD_COMM")"; then
        wait_mysql "$pid"
        say "MariaDB already running (pid $pid), reusing it"
        return
    fi
    rm -f -- "$TT_MYSQL_PIDFILE" "$TT_MYSQL_SOCKET" "$TT_MYSQL_SOCKET.lock"
    if port_in_use "$TT_MYSQL_PORT"; then
        # Typically the instance of another checkout of this project on the same machine (a CI
        # clone next to a developer's tree): share it if our account works there; it is then
        # neither started nor stopped from here.
        if mysql_app --execute='SELECT 1' >/dev/null 2>&1; then
            FOREIGN_MYSQL=1
            say "MariaDB on 127.0.0.1:$TT_MYSQL_PORT was not started from $TT_VAR (another checkout?), but $TT_MYSQL_USER can use $TT_MYSQL_DB there: sharing it"
            return
        fi
        die "port $TT_MYSQL_PORT is taken by another process (not our MariaDB: no live pid in $TT_MYSQL_PIDFILE, and $TT_MYSQL_USER cannot log in there); stop it or set TT_MYSQL_PORT"
    fi
    [[ -d "$TT_MYSQL_DATADIR/mysql" ]] || init_mysql_datadir
    # setsid: own session, so signals to the caller's process group (Ctrl-C, a job runner
    # killing its job) do not reach the server; -w keeps $! alive exactly as long as the
    # server, whether or not setsid had to fork. All standard streams are detached.
    # 9>&-: the daemon must not inherit (and so hold forever) this script's lock.
    setsid -w "$MARIADBD" --defaults-file="$TT_MYSQL_CNF" "${MYSQLD_USER_OPT[@]}" \
        </dev/null >>"$TT_MYSQL_LOG" 2>&1 9>&- &
    pid=$!
    wait_mysql "$pid"
    if ((FRESH_DATADIR)); then
        # mariadb-install-db also grants proxying to root@<hostname>; with skip-name-resolve that
        # entry only earns a warning in the log at every start, so drop it.
        printf "DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1', '%%');\nFLUSH PRIVILEGES;\n" |
            mysql_admin || die "could not tidy the new server's grant tables"
    fi
    pid="$(live_pid "$TT_MYSQL_PIDFILE" "$MYSQLD_COMM" || echo "$pid")"
    say "MariaDB started (pid $pid), data in $TT_MYSQL_DATADIR, log $TT_MYSQL_LOG"
}

setup_mysql_db() {
    local users
    if ((FOREIGN_MYSQL)); then
        # No admin access to a shared instance: the application account loads the files itself
        # (it has all privileges on the database).
        mysql_app <"$SCHEMA_SQL" || die "loading $SCHEMA_SQL failed"
        mysql_app <"$MIGRATE_SQL" || die "loading $MIGRATE_SQL failed"
        mysql_app <"$SEED_SQL" || die "loading $SEED_SQL failed"
    else
        setup_mysql_account
        mysql_admin --database="$TT_MYSQL_DB" <"$SCHEMA_SQL" || die "loading $SCHEMA_SQL failed"
        mysql_admin --database="$TT_MYSQL_DB" <"$MIGRATE_SQL" || die "loading $MIGRATE_SQL failed"
        mysql_admin --database="$TT_MYSQL_DB" <"$SEED_SQL" || die "loading $SEED_SQL failed"
    fi

    # Check the application account the way the servers connect.
    users="$(mysql_app --skip-column-names --execute='SELECT COUNT(*) FROM IMUser')" ||
        die "user $TT_MYSQL_USER cannot log in over TCP to 127.0.0.1:$TT_MYSQL_PORT"
    say "database $TT_MYSQL_DB ready: schema + migrations + seed applied, $users users; account $TT_MYSQL_USER@127.0.0.1/localhost"
}

# Create the database and the application account (admin access through the socket).
setup_mysql_account() {
    # Single quotes and backslashes doubled/escaped for an SQL string literal.
    local pw="${TT_MYSQL_PASSWORD//\\/\\\\}" host
    pw="${pw//\'/\'\'}"
    {
        # shellcheck disable=SC2016 # the backquotes quote an SQL identifier
        printf 'CREATE DATABASE IF NOT EXISTS `%s` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;\n' "$TT_MYSQL_DB"
        for host in 127.0.0.1 localhost; do
            printf "CREATE USER IF NOT EXISTS '%s'@'%s' IDENTIFIED BY '%s';\n" "$TT_MYSQL_USER" "$host" "$pw"
            # Also when it existed: follow a changed TT_MYSQL_PASSWORD.
            printf "ALTER USER '%s'@'%s' IDENTIFIED BY '%s';\n" "$TT_MYSQL_USER" "$host" "$pw"
            printf "GRANT ALL PRIVILEGES ON \`%s\`.* TO '%s'@'%s';\n" "$TT_MYSQL_DB" "$TT_MYSQL_USER" "$host"
        done
    } | mysql_admin || die "could not create database $TT_MYSQL_DB / user $TT_MYSQL_USER"
}

# ---------------------------------------------------------------------------------------------
# Redis
REDIS_COMM='^redis-server'

write_redis_conf() {
    local tmp="$TT_REDIS_CONF.tmp"
    cat >"$tmp" <<EOF
# Written by scripts/db-up.sh on every run; edit that script (or the TT_* settings) instead.
bind 127.0.0.1
port $TT_REDIS_PORT
protected-mode yes
daemonize yes
supervised no
pidfile $TT_REDIS_PIDFILE
logfile $TT_REDIS_LOG
loglevel notice
dir $TT_REDIS_DIR
databases 16
# Persistence: Redis holds state the MySQL rows depend on (group membership is authoritative
# in group_member_<id>; msg_id_<relateId> / group_msg_id_<id> allocate message ids), so losing
# it on a restart would break groups and reuse message ids. Keep Redis's default RDB snapshot
# rules: a clean shutdown (db-down.sh) writes dump.rdb and the next start loads it. No AOF: this
# is a development instance, and a crash losing the last seconds is acceptable.
save 3600 1
save 300 100
save 60 10000
dbfilename dump.rdb
appendonly no
EOF
    mv -f -- "$tmp" "$TT_REDIS_CONF"
}

redis_ping() {
    [[ "$("$REDIS_CLI" -h 127.0.0.1 -p "$TT_REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

wait_redis() {
    local deadline=$((SECONDS + WAIT_SECS))
    until redis_ping; do
        if ((SECONDS >= deadline)); then
            log_tail "$TT_REDIS_LOG"
            die "Redis did not answer PING on 127.0.0.1:$TT_REDIS_PORT within ${WAIT_SECS}s (log: $TT_REDIS_LOG)"
        fi
        if [[ -s "$TT_REDIS_PIDFILE" ]] && ! live_pid "$TT_REDIS_PIDFILE" "$REDIS_COMM" >/dev/null; then
            log_tail "$TT_REDIS_LOG"
            die "Redis exited during startup (log: $TT_REDIS_LOG)"
        fi
        sleep 0.2
    done
}

start_redis() {
    local pid
    write_redis_conf
    if pid="$(live_pid "$TT_REDIS_PIDFILE" "$REDIS_COMM")"; then
        wait_redis
        say "Redis already running (pid $pid), reusing it"
        return
    fi
    rm -f -- "$TT_REDIS_PIDFILE"
    if port_in_use "$TT_REDIS_PORT"; then
        if redis_ping; then
            say "Redis on 127.0.0.1:$TT_REDIS_PORT was not started from $TT_VAR (another checkout?), but answers: sharing it"
            return
        fi
        die "port $TT_REDIS_PORT is taken by another process (not our Redis: no live pid in $TT_REDIS_PIDFILE); stop it or set TT_REDIS_PORT"
    fi
    # Daemonizes itself (fork + setsid); the foreground part returns once the config is read.
    if ! "$REDIS_SERVER" "$TT_REDIS_CONF" </dev/null >>"$TT_REDIS_LOG" 2>&1 9>&-; then
        log_tail "$TT_REDIS_LOG"
        die "redis-server failed to start (log: $TT_REDIS_LOG)"
    fi
    wait_redis
    pid="$(live_pid "$TT_REDIS_PIDFILE" "$REDIS_COMM" || echo '?')"
    say "Redis started (pid $pid), data in $TT_REDIS_DIR, log $TT_REDIS_LOG"
}

# ---------------------------------------------------------------------------------------------
start_mysql
setup_mysql_db
start_redis
if ((FOREIGN_MYSQL)); then
    say "ready: MariaDB 127.0.0.1:$TT_MYSQL_PORT (shared), Redis 127.0.0.1:$TT_REDIS_PORT"
else
    say "ready: MariaDB 127.0.0.1:$TT_MYSQL_PORT (socket $TT_MYSQL_SOCKET), Redis 127.0.0.1:$TT_REDIS_PORT"
fi
