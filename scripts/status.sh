#!/usr/bin/env bash
# Show how the daemons of a local stack are doing:
#
#   scripts/status.sh [CONF_DIR]        (default CONF_DIR: conf/)
#
# For each daemon of CONF_DIR (in start order), one line: running with its pid or not; then,
# when its conf sets MetricsPort, the answer of /healthz and the gauges of /metrics (state:
# connections, users, queue depths, links), at most MAX_GAUGES of them.
# Exit status: 0 when every daemon runs and answers ok (or has no metrics port), else 1.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/stack.sh
. scripts/stack.sh "${1:-conf}"

MAX_GAUGES="${MAX_GAUGES:-12}"

# The gauges of a Prometheus text exposition on stdin, one "name{labels} value" a line.
gauges() {
    awk '$1 == "#" && $2 == "TYPE" && $4 == "gauge" { g[$3] = 1; next }
         $1 !~ /^#/ && NF >= 2 { n = $1; sub(/\{.*/, "", n); if (n in g) print $1, $2 }'
}

status=0
show() { # show <conf name> (without .conf)
    local name="$1" conf="$CONF_DIR/$1.conf" dir="$STACK_DIR/$1" pid port ip health metrics
    [[ -f "$conf" ]] || return 0
    if pid="$(running_pid "$dir")"; then
        printf '%-16s running (pid %s)\n' "$name" "$pid"
    else
        printf '%-16s NOT RUNNING\n' "$name"
        status=1
        return 0
    fi
    port="$(conf_value "$conf" MetricsPort)"
    if [[ -z "$port" || "$port" == 0 ]]; then
        printf '%-16s no MetricsPort in %s\n' "" "$conf"
        return 0
    fi
    ip="$(conf_value "$conf" MetricsIP)"
    [[ -z "$ip" || "$ip" == 0.0.0.0 ]] && ip=127.0.0.1
    health="$(http_get "$ip" "$port" /healthz 2>/dev/null | head -n 1)" || health=""
    [[ -n "$health" ]] || health="no answer from http://$ip:$port/healthz"
    printf '%-16s health: %s\n' "" "$health"
    [[ "$health" == ok ]] || status=1
    metrics="$(http_get "$ip" "$port" /metrics 2>/dev/null | gauges | sort)" || metrics=""
    local count
    count="$(printf '%s' "$metrics" | grep -c . || true)"
    printf '%s\n' "$metrics" | head -n "$MAX_GAUGES" | sed -e '/^$/d' -e 's/^/                   /'
    if ((count > MAX_GAUGES)); then
        printf '%-19s… %d more: curl http://%s:%s/metrics\n' "" "$((count - MAX_GAUGES))" "$ip" "$port"
    fi
}

echo "stack \"$STACK_NAME\" (confs from $CONF_DIR, working directories under $STACK_DIR)"
for name in dbproxyserver routeserver loginserver fileserver msfs pushserver httpmsgserver; do
    show "$name"
done
for conf in "$CONF_DIR"/msgserver*.conf; do
    [[ -f "$conf" ]] && show "$(basename "$conf" .conf)"
done
exit "$status"
