# shellcheck shell=bash
# Shared by up.sh, down.sh, bench.sh and soak.sh: `. scripts/stack.sh CONF_DIR` sets CONF_DIR
# (absolute), STACK_NAME, STACK_DIR and a few helpers. Expects scripts/env.sh to be sourced first.

CONF_DIR="$(cd -- "$1" 2>/dev/null && pwd -P)" || {
    printf 'no such conf directory: %s\n' "$1" >&2
    exit 1
}
STACK_NAME="$(basename "$CONF_DIR")"
STACK_DIR="$TT_VAR/stacks/$STACK_NAME"
mkdir -p "$STACK_DIR"

say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*"; }
die() {
    printf '%s: ERROR: %s\n' "$(basename "$0" .sh)" "$*" >&2
    exit 1
}

# lock_run_dir SUBDIR: one run of the calling script at a time per checkout (descriptor 9 held as
# the lock on $TT_VAR/SUBDIR/lock; dies if another run holds it), and run_dir set to a new
# directory $TT_VAR/SUBDIR/<UTC time> for this run's files.
lock_run_dir() {
    mkdir -p "$TT_VAR/$1"
    exec 9>"$TT_VAR/$1/lock"
    flock -n 9 || die "another scripts/$(basename "$0") of this checkout is running (lock $TT_VAR/$1/lock)"
    run_dir="$TT_VAR/$1/$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$run_dir"
}

# The pid in <dir>/server.pid if that process is alive.
running_pid() {
    local pid
    [[ -s "$1/server.pid" ]] || return 1
    pid="$(tr -dc '0-9' <"$1/server.pid")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# conf_value FILE KEY: the first value of KEY, as the conf reader sees it.
conf_value() {
    sed -n -e 's/#.*//' -e "s/^[[:space:]]*$2[[:space:]]*=[[:space:]]*//p" "$1" |
        sed -e 's/[[:space:]]*$//' | head -n 1
}

# http_get HOST PORT PATH: the body of a GET (bash /dev/tcp: no curl needed).
http_get() {
    local reply
    exec 3<>"/dev/tcp/$1/$2" || return 1
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
    reply="$(timeout 5 cat <&3)" || true
    exec 3<&- 3>&-
    printf '%s\n' "${reply#*$'\r\n\r\n'}"
}
