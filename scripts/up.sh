#!/usr/bin/env bash
# Start the whole local system:
#
#   scripts/up.sh [CONF_DIR]        (default CONF_DIR: conf/)
#
# 1. MariaDB + Redis, project-local, with the TeamTalk schema and the demo users
#    user1 … user11100, password 123456 (scripts/db-up.sh; installs them with apt-get if missing);
# 2. builds the daemons (cargo build --bins; TT_PROFILE=release for an optimised build);
# 3. starts, in order, db_proxy_server, route_server, login_server, then file_server, msfs,
#    push_server and http_msg_server (each when CONF_DIR has its conf: fileserver.conf,
#    msfs.conf, pushserver.conf, httpmsgserver.conf), then one msg_server per msgserver*.conf in
#    CONF_DIR, each with its conf from CONF_DIR, its working directory (server.pid, log,
#    file_server's offline_file/, msfs's files) under var/stacks/<name of CONF_DIR>/<daemon>/;
# 4. waits until login_server answers HTTP, and prints how to connect and, for each daemon
#    whose conf sets MetricsPort, where its /metrics and /healthz are.
#
# Idempotent: a daemon of this stack that is still running is left alone. Another CONF_DIR
# (with other ports) runs a second stack beside the first. Stop with scripts/down.sh [CONF_DIR].
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh
# shellcheck source=scripts/stack.sh
. scripts/stack.sh "${1:-conf}"

bash scripts/db-up.sh

profile="${TT_PROFILE:-debug}"
build_args=(--workspace --bins)
[[ "$profile" == release ]] && build_args+=(--release)
say "building the daemons ($profile)"
cargo build -q "${build_args[@]}"
BIN="$TT_ROOT/target/$profile"

start() { # start <daemon binary> <conf file>
    local bin="$1" conf="$2" name dir pid
    name="$(basename "$conf" .conf)"
    dir="$STACK_DIR/$name"
    mkdir -p "$dir"
    if pid="$(running_pid "$dir")"; then
        say "$name already running (pid $pid)"
        return 0
    fi
    [[ -x "$BIN/$bin" ]] || die "$BIN/$bin is missing (build failed?)"
    # The daemon writes server.pid in its working directory once its listeners are up, then
    # prints its readiness line.
    rm -f "$dir/server.pid"
    # A fresh log per start (the previous one is kept as .1), so the readiness line below is
    # this run's.
    [[ -f "$dir/$name.log" ]] && mv -f "$dir/$name.log" "$dir/$name.log.1"
    (cd "$dir" && exec nohup "$BIN/$bin" -c "$conf" >"$dir/$name.log" 2>&1 </dev/null) &
    local waited=0
    until grep -q "server ready" "$dir/$name.log" 2>/dev/null; do
        if ! kill -0 $! 2>/dev/null; then
            tail -n 20 "$dir/$name.log" >&2 || true
            die "$name exited at start-up (log: $dir/$name.log)"
        fi
        ((waited++ < 300)) || die "$name is not ready after 30 s (log: $dir/$name.log)"
        sleep 0.1
    done
    say "$name up (pid $(cat "$dir/server.pid"), log $dir/$name.log)"
}

start db_proxy_server "$CONF_DIR/dbproxyserver.conf"
start route_server "$CONF_DIR/routeserver.conf"
start login_server "$CONF_DIR/loginserver.conf"
[[ -f "$CONF_DIR/fileserver.conf" ]] && start file_server "$CONF_DIR/fileserver.conf"
[[ -f "$CONF_DIR/msfs.conf" ]] && start msfs "$CONF_DIR/msfs.conf"
[[ -f "$CONF_DIR/pushserver.conf" ]] && start push_server "$CONF_DIR/pushserver.conf"
[[ -f "$CONF_DIR/httpmsgserver.conf" ]] && start http_msg_server "$CONF_DIR/httpmsgserver.conf"
for conf in "$CONF_DIR"/msgserver*.conf; do
    start msg_server "$conf"
done

http_port="$(conf_value "$CONF_DIR/loginserver.conf" HttpPort)"
login_url="http://127.0.0.1:$http_port"
# Wait until login_server hands out a msg_server (the msg_servers register over their links).
answer=""
for _ in $(seq 1 100); do
    answer="$(http_get 127.0.0.1 "$http_port" /msg_server || true)"
    [[ "$answer" == *'"code" : 0'* || "$answer" == *'"code":0'* ]] && break
    sleep 0.1
done
[[ "$answer" == *'"code" : 0'* || "$answer" == *'"code":0'* ]] ||
    die "login_server at $login_url does not hand out a msg_server yet: $answer"

file_line="" msfs_line="" push_line="" api_line=""
if [[ -f "$CONF_DIR/fileserver.conf" ]]; then
    file_line="  file_server    clients 127.0.0.1:$(conf_value "$CONF_DIR/fileserver.conf" ClientListenPort), msg_servers 127.0.0.1:$(conf_value "$CONF_DIR/fileserver.conf" MsgServerListenPort)
"
fi
if [[ -f "$CONF_DIR/msfs.conf" ]]; then
    msfs_line="  msfs           http://127.0.0.1:$(conf_value "$CONF_DIR/msfs.conf" ListenPort)/ (files under $STACK_DIR/msfs/)
"
fi
if [[ -f "$CONF_DIR/pushserver.conf" ]]; then
    gateway="$(conf_value "$CONF_DIR/pushserver.conf" PushGatewayUrl)"
    push_line="  push_server    127.0.0.1:$(conf_value "$CONF_DIR/pushserver.conf" ListenPort), gateway ${gateway:-none (pushes are logged: set PushGatewayUrl in pushserver.conf)}
"
fi
if [[ -f "$CONF_DIR/httpmsgserver.conf" ]]; then
    api_line="  http_msg_server http://127.0.0.1:$(conf_value "$CONF_DIR/httpmsgserver.conf" ListenPort)/query/CreateGroup, /query/ChangeMembers
"
fi

# One line per daemon whose conf sets MetricsPort: where its /metrics and /healthz are.
metrics_lines=""
for conf in "$CONF_DIR"/{dbproxyserver,routeserver,loginserver,fileserver,msfs,pushserver,httpmsgserver}.conf "$CONF_DIR"/msgserver*.conf; do
    [[ -f "$conf" ]] || continue
    port="$(conf_value "$conf" MetricsPort)"
    [[ -n "$port" && "$port" != 0 ]] || continue
    ip="$(conf_value "$conf" MetricsIP)"
    [[ -z "$ip" || "$ip" == 0.0.0.0 ]] && ip=127.0.0.1
    metrics_lines+="$(printf '  %-14s http://%s:%s/metrics  /healthz' "$(basename "$conf" .conf)" "$ip" "$port")
"
done
[[ -n "$metrics_lines" ]] && metrics_lines="Metrics (scripts/status.sh${1:+ $1} sums them up):
$metrics_lines"

cat <<MSG

TeamTalk local stack "$STACK_NAME" is up (confs from $CONF_DIR).
  login_server   $login_url/msg_server
${file_line}${msfs_line}${push_line}${api_line}  MariaDB        127.0.0.1:$TT_MYSQL_PORT  database $TT_MYSQL_DB, user $TT_MYSQL_USER / $TT_MYSQL_PASSWORD
  Redis          127.0.0.1:$TT_REDIS_PORT
  Demo users     user1 … user11100 (ids 1 … 11100), password 123456
${metrics_lines}
Chat from two terminals:
  $BIN/tt-cli --login-url $login_url login user1 123456      then: send 2 hello / recv / quit
  $BIN/tt-cli --login-url $login_url login user2 123456      then: recv / send 1 hi
Stop it with: scripts/down.sh${1:+ $1}
MSG
