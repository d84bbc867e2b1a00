#!/usr/bin/env bash
# Stop what scripts/up.sh [CONF_DIR] started: the daemons of that stack, then (for the default
# stack only, or with --all) MariaDB and Redis. Data is kept under var/.
#
#   scripts/down.sh [CONF_DIR] [--keep-db]
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
conf_arg="conf"
keep_db=""
for a in "$@"; do
    case "$a" in
    --keep-db) keep_db=1 ;;
    *) conf_arg="$a" ;;
    esac
done
# shellcheck source=scripts/stack.sh
. scripts/stack.sh "$conf_arg"

# Stop in the reverse order of start-up.
for name in $(ls -r "$STACK_DIR" 2>/dev/null | grep -E '^msgserver') httpmsgserver pushserver msfs fileserver loginserver routeserver dbproxyserver; do
    dir="$STACK_DIR/$name"
    if pid="$(running_pid "$dir")"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        say "$name stopped (pid $pid)"
    fi
    rm -f "$dir/server.pid"
done

# Other stacks still running share the databases: only stop them when no daemon is left.
if [[ -z "$keep_db" ]]; then
    for dir in "$TT_VAR"/stacks/*/*; do
        if running_pid "$dir" >/dev/null; then
            say "daemons of another stack still run ($dir): leaving MariaDB and Redis up"
            exit 0
        fi
    done
    bash scripts/db-down.sh
fi
