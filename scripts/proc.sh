# shellcheck shell=bash
# Process helpers shared by db-up.sh and db-down.sh (sourced; defines functions only).

# ---------------------------------------------------------------------------------------------
# Binaries (Debian puts the daemons in /usr/sbin, which a non-root PATH may lack).
find_bin() {
    local name dir
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        for dir in /usr/sbin /usr/local/sbin /sbin; do
            if [[ -x "$dir/$name" ]]; then
                printf '%s\n' "$dir/$name"
                return 0
            fi
        done
    done
    return 1
}

# True while process $1 exists and is not a zombie (a killed daemon is re-parented to init,
# which may take a while to reap it; until then kill -0 still succeeds).
is_alive() {
    local stat
    kill -0 "$1" 2>/dev/null || return 1
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != [ZX] ]]
}

# pid from a pid file, if that process is alive and is the expected program (pid reuse guard).
# $1 pid file, $2 extended regex for /proc/<pid>/comm.
live_pid() {
    local pid comm
    [[ -s "$1" ]] || return 1
    pid="$(tr -dc '0-9' <"$1")"
    [[ -n "$pid" ]] && is_alive "$pid" || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [[ -z "$comm" || "$comm" =~ $2 ]] || return 1
    printf '%s\n' "$pid"
}
