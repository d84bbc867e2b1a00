# shellcheck shell=bash
# Shared by up.sh and down.sh: `. scripts/stack.sh CONF_DIR` sets CONF_DIR (absolute),
# STACK_NAME, STACK_DIR and a few helpers. Expects scripts/env.sh to be sourced first.

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
