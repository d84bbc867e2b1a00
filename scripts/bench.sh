#!/usr/bin/env bash
# The benchmark of the whole message path: fixed scenarios against a release stack, one table.
#
#   scripts/bench.sh [--quick] [--original] [--original-only] [--big] [--scenarios LIST]
#
#   --quick          a few seconds per scenario and fewer steps: for trying the script out
#   --original       also run every scenario against the original C++ daemons (as shipped and
#                    optimised), one after the other on the same machine: ../shared/original/
#                    (TT_ORIG_TOOLS) builds and starts them; TT_ORIG (default ~/teamtalk-original)
#                    must hold build/ and build-rel/ (build.sh, then build.sh with
#                    TT_ORIG_CMAKE_ARGS=-DCMAKE_BUILD_TYPE=Release into build-rel); a missing
#                    build is skipped with a note
#   --original-only  the original's stacks only
#   --big            the idle scenario holds 100 000 connections, not 10 000 (users
#                    1101..101100: the bench's database gets the missing ones; the open-files
#                    limits must allow them: see docs/PERFORMANCE.md, "Idle connections")
#   --scenarios LIST comma-separated subset of: idle,logins,chat,group,raw (default: all)
#   TT_BENCH_TOOLS=DIR  the tt-load and tt-bench to run (default: this checkout's release build)
#   TT_BENCH_CHAT_TOOL=tt-bench|tt-load  the chat steps' load generator (default tt-bench)
#
# This project's stack runs from conf/bench/ (scripts/up.sh conf/bench with TT_PROFILE=release:
# other ports than conf/, conf/alt/ and conf/soak/, the project-local MariaDB and Redis with
# innodb_flush_log_at_trx_commit=1, no per-connection message limit). The original's stack has
# its own MariaDB (:3306, same durability) and Redis (:6379) and the same ports as conf/: a
# conf/ stack of this checkout that is running is stopped first (scripts/down.sh --keep-db).
#
# Scenarios, in this order on each stack (every client logs in as a mobile client):
#   idle    N idle logged-in connections on one msg_server (tt-load --hold): its RSS per
#           connection (VmRSS after the logins minus before, divided by N)
#   logins  login storm: 4 workers, each a full login (HTTP discovery, TCP, login) and close
#           (tt-bench logins): logins/s and p99
#   chat    single chat at increasing offered load: P pairs, each sender 19 msgs/s (under the
#           original's fixed limit of 20 a second), one message in flight, receivers on the
#           other msg_server (tt-bench chat: one thread drives every client after the
#           logins; TT_BENCH_CHAT_TOOL=tt-load: a thread a client); P grows to 500 (users 9001..10000), then this project's
#           senders send faster (28, 38, 57 a second); it stops after two steps in a row that
#           ack under 85 % of what was offered. The knee: the highest acked/s with p99
#           send->ack <= 100 ms
#   group   fan-out: a 500-member group, all online, 50 of them sending at increasing rates
#           (tt-bench group): deliveries/s, the knee as for chat (p99 send->delivery <= 100 ms)
#   raw     the limit: rows shaped like IMMessage_N rows inserted straight into the same MariaDB
#           by 8 connections (db_proxy's ThreadNum), in transactions of 1, 16, 64 and 256 rows
#           (tt-bench rawinsert): rows/s; the chat knee is shown as a fraction of the best
# Before each scenario the 1-minute load average is recorded (other work on the machine makes
# the figures noisy); during each chat and group step the CPU used by each daemon, MariaDB,
# Redis and the load generator is sampled (which process saturates).
#
# Output: the table on stdout (markdown) and, under var/bench/runs/<start time>/, every tool's log,
# results.tsv (one row per measurement) and cpu.tsv. Never run by CI or scripts/test.sh.
# Exit status: 0 done (a scenario that failed shows as "failed" in the table, with its log);
# 1 a check of the load generator failed (an acked message lost or duplicated); 2 bad usage.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# The bench stack has a MariaDB and a Redis of its own, as the original's stack has: the tests
# and tools others run on the machine do not share its tables, locks and fsyncs. They live under
# TT_BENCH_VAR (default var/bench/), on ports TT_BENCH_MYSQL_PORT and TT_BENCH_REDIS_PORT
# (13336 and 16396, those of conf/bench/dbproxyserver.conf), started by scripts/db-up.sh (the
# schema and the demo users) and stopped at the end; their data stays for the next run.
export TT_VAR="${TT_BENCH_VAR:-$PWD/var/bench}"
export TT_MYSQL_PORT="${TT_BENCH_MYSQL_PORT:-13336}" TT_REDIS_PORT="${TT_BENCH_REDIS_PORT:-16396}"
# shellcheck source=scripts/env.sh
. scripts/env.sh

usage() {
    sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

quick=0 original=0 project=1 big=0 scenarios="idle,logins,chat,group,raw"
while (($#)); do
    case "$1" in
    --quick) quick=1 ;;
    --original) original=1 ;;
    --original-only) original=1 project=0 ;;
    --big) big=1 ;;
    --scenarios)
        (($# >= 2)) || usage
        scenarios="$2"
        shift
        ;;
    -h | --help) usage ;;
    *)
        printf 'bench: unknown argument: %s\n' "$1" >&2
        usage
        ;;
    esac
    shift
done
for s in ${scenarios//,/ }; do
    [[ "$s" =~ ^(idle|logins|chat|group|raw)$ ]] || { printf 'bench: unknown scenario %s\n' "$s" >&2; exit 2; }
done
want() { [[ ",$scenarios," == *",$1,"* ]]; }

CONF_DIR=conf/bench
# shellcheck source=scripts/stack.sh
. scripts/stack.sh "$CONF_DIR"

ORIG="${TT_ORIG:-$HOME/teamtalk-original}"
ORIG_TOOLS="${TT_ORIG_TOOLS:-$TT_ROOT/../shared/original}"
ORIG_USERS=11100

# Scenario sizes.
if ((quick)); then
    step_secs=3 chat_steps=(50:19 200:19) group_rates=(0.8) raw_batches=(1 64) raw_secs=3
    idle_conns=2000 login_secs=3
else
    step_secs=15 chat_steps=(25:19 50:19 100:19 150:19 200:19 250:19 300:19 400:19 500:19 500:28 500:38 500:57)
    group_rates=(0.2 0.4 0.8 1.6 3.2)
    raw_batches=(1 16 64 256) raw_secs=10 idle_conns=10000 login_secs=15
fi
((big)) && idle_conns=100000
# Users, all of the soak's range (scripts/soak.sh; bench and soak never run together), chat and
# group at its top, away from the 300 clients of `soak.sh --short` (1101..1400) that CI runs:
# another sender in a pair's conversation would show as gaps in its msg ids.
idle_first=1101           # idle: 1101..11100 (10 000)
first_user=9001           # chat pairs and logins: 9001..10000
group_first=10001         # the group's members: 10001..10500
group_members=500 group_senders=50

# One bench at a time per checkout: a second one would stop the first one's stack.
lock_run_dir runs
results="$run_dir/results.tsv"
cpu_tsv="$run_dir/cpu.tsv"
printf 'stack\tscenario\tstep\tfigure\tdetail\tload\n' >"$results"
printf 'stack\tscenario\tstep\tprocess\tcpu_percent\n' >"$cpu_tsv"
failed_check=0

# Everything this script starts is stopped on the way out.
orig_up=0
cleanup() {
    bash scripts/down.sh "$CONF_DIR" --keep-db >/dev/null 2>&1 || true
    bash scripts/db-down.sh >/dev/null 2>&1 || true
    ((orig_up)) && bash "$ORIG_TOOLS/down.sh" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Descriptors: one per held connection in tt-load (the msg_server raises its own limit).
want_fds=$((idle_conns + 4096))
if [[ "$(ulimit -Hn)" == unlimited ]] || (($(ulimit -Hn) >= want_fds)); then
    ulimit -n "$want_fds" 2>/dev/null || true
else
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi

loadavg() { cut -d' ' -f1 /proc/loadavg; }
row() { # row STACK SCENARIO STEP FIGURE DETAIL LOAD
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

# CPU time (utime + stime, clock ticks) of a pid, empty when gone.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || true; }
hz="$(getconf CLK_TCK)"
declare -A cpu_pid # process name -> pid, set per stack (and the load generator while it runs)
declare -A cpu_t0
cpu_start() {
    local n
    cpu_t0=()
    cpu_w0="$EPOCHREALTIME"
    for n in "${!cpu_pid[@]}"; do cpu_t0[$n]="$(ticks "${cpu_pid[$n]}")"; done
}
# Percent of one core used by each process since cpu_start: a row of cpu.tsv each (stack,
# scenario and step from STACK, cur_scenario, cur_step) and cpu_line.
cpu_end() {
    local n t pct
    cpu_line=""
    for n in $(printf '%s\n' "${!cpu_pid[@]}" | sort); do
        t="$(ticks "${cpu_pid[$n]}")"
        if [[ -n "$t" && -n "${cpu_t0[$n]:-}" ]]; then
            pct="$(awk -v t="$((t - cpu_t0[$n]))" -v hz="$hz" -v a="$cpu_w0" -v b="$EPOCHREALTIME" \
                'BEGIN { printf "%.0f", 100 * t / hz / (b - a) }')"
        else
            pct="?"
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$STACK" "$cur_scenario" "$cur_step" "$n" "$pct" >>"$cpu_tsv"
        cpu_line+=" $n=$pct%"
    done
}

# run_gen LOG MARKER SECS CMD...: runs a load generator (its output in LOG). The CPU of every
# process of the stack and of the generator is measured over SECS seconds from the first line of
# LOG matching MARKER (empty: from the start), i.e. while the load runs, not while clients log
# in or deliveries drain. Sets gen_status and cpu_line.
run_gen() {
    local log="$1" marker="$2" secs="$3" pid started="" measured=0
    shift 3
    "$@" >"$log" 2>&1 9>&- &
    pid=$!
    cpu_line=""
    while kill -0 "$pid" 2>/dev/null; do
        if [[ -z "$started" ]] && { [[ -z "$marker" ]] || grep -qaE "$marker" "$log" 2>/dev/null; }; then
            cpu_pid[load-generator]=$pid
            cpu_start
            started="$EPOCHREALTIME"
        elif [[ -n "$started" ]] && ((!measured)) &&
            awk -v a="$started" -v b="$EPOCHREALTIME" -v s="$secs" 'BEGIN { exit !(b - a >= s) }'; then
            cpu_end
            measured=1
        fi
        sleep 0.2
    done
    # A generator that ended within the window: measured up to its end (its own share unknown).
    [[ -n "$started" ]] && ((!measured)) && cpu_end
    unset 'cpu_pid[load-generator]'
    gen_status=0
    wait "$pid" || gen_status=$?
}

# A field after a word in a line of a log: field LOG LINE-REGEX WORD -> the next token.
field() {
    grep -a -E "$2" "$1" | tail -n 1 | awk -v w="$3" '{ for (i = 1; i < NF; i++) if ($i == w) { print $(i + 1); exit } }'
}
num() { sed -e 's/ms$//' -e 's/[^0-9.]//g' <<<"$1"; } # "12.5ms" -> 12.5

# ---- the stacks ----------------------------------------------------------------------------

# Sets STACK, LOGIN_URL, MSG_SERVERS, API, MYSQL, MSG_PID and cpu_pid for the stack started.
start_project() {
    bash scripts/down.sh "$CONF_DIR" --keep-db >/dev/null
    say "starting this project's stack (release build, confs from $CONF_DIR)"
    TT_PROFILE=release bash scripts/up.sh "$CONF_DIR" >"$run_dir/up-project.log" 2>&1 9>&- ||
        { tail -n 30 "$run_dir/up-project.log" >&2; die "the bench stack did not start"; }
    STACK=project
    BIN="$TT_ROOT/target/release"
    LOGIN_URL="http://127.0.0.1:$(conf_value "$CONF_DIR/loginserver.conf" HttpPort)"
    MSG_SERVERS="127.0.0.1:$(conf_value "$CONF_DIR/msgserver.conf" ListenPort),127.0.0.1:$(conf_value "$CONF_DIR/msgserver2.conf" ListenPort)"
    API="http://127.0.0.1:$(conf_value "$CONF_DIR/httpmsgserver.conf" ListenPort)"
    MYSQL="127.0.0.1:$TT_MYSQL_PORT"
    cpu_pid=()
    local d
    for d in dbproxyserver routeserver loginserver msgserver msgserver2; do
        cpu_pid[$d]="$(running_pid "$STACK_DIR/$d")" || die "$d of the bench stack is not running"
    done
    MSG_PID="${cpu_pid[msgserver]}"
    ((!big)) || seed_big_users
    cpu_pid[mariadbd]="$(tr -dc 0-9 <"$TT_MYSQL_PIDFILE")"
    cpu_pid[redis]="$(tr -dc 0-9 <"$TT_REDIS_PIDFILE")"
    MYSQL_CNF="$TT_MYSQL_CNF"
    check_durability
}

# --big: users 11101..101100 in the bench's own database, shaped as sql/seed.sql's (password
# 123456), from MariaDB's sequence engine. Users that exist are left alone.
seed_big_users() {
    say "seeding users 11101..101100 into the bench database (if missing)"
    MYSQL_PWD="$TT_MYSQL_PASSWORD" mariadb --defaults-file="$TT_MYSQL_CNF" --protocol=tcp \
        -h127.0.0.1 -P"$TT_MYSQL_PORT" -u"$TT_MYSQL_USER" "$TT_MYSQL_DB" <<'SQL' ||
INSERT IGNORE INTO IMUser (id, sex, name, domain, nick, password, salt, phone, email, avatar,
                           departId, status, created, updated, push_shield_status, sign_info)
SELECT seq, IF(seq % 2 = 1, 1, 2), CONCAT('user', seq), CONCAT('user', seq), CONCAT('User ', seq),
       MD5(CONCAT(MD5('123456'), CAST((seq * 7919) % 10000 AS CHAR))),
       CAST((seq * 7919) % 10000 AS CHAR), CONCAT('138', LPAD(seq, 8, '0')),
       CONCAT('user', seq, '@example.com'), '', 1, 0, 1704067200, 1704067200, 0,
       CONCAT('Hi, I am user', seq, '.')
FROM seq_11101_to_101100;
SQL
        die "seeding the users of --big failed"
}

# sql QUERY: runs a query on the stack's MariaDB (MYSQL_CNF, MYSQL) as the application account.
sql() {
    MYSQL_PWD="$TT_MYSQL_PASSWORD" mariadb --defaults-file="$MYSQL_CNF" --protocol=tcp \
        -h127.0.0.1 -P"${MYSQL#*:}" -u"$TT_MYSQL_USER" -N -e "$1" "$TT_MYSQL_DB" 2>/dev/null
}

# Counters of the stack's MariaDB: "rows commits inserts fsyncs" — the rows of IMMessage_0..7
# (their auto-increment ids), explicit COMMITs, INSERT statements, InnoDB fsyncs.
db_counters() {
    local ids
    ids="$(sql "SELECT $(printf '(SELECT IFNULL(MAX(id), 0) FROM IMMessage_%d)+' 0 1 2 3 4 5 6 7)0")"
    sql "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_commit', 'Com_insert', 'Innodb_data_fsyncs')" |
        awk -v r="${ids:-0}" '{ v[$1] = $2 } END { print r + 0, v["Com_commit"] + 0, v["Com_insert"] + 0, v["Innodb_data_fsyncs"] + 0 }'
}

check_durability() {
    local v
    v="$(sql 'SELECT @@innodb_flush_log_at_trx_commit')" || v="?"
    say "$STACK: MariaDB $MYSQL innodb_flush_log_at_trx_commit=$v"
    row "$STACK" durability - "innodb_flush_log_at_trx_commit=$v" "" "$(loadavg)"
}

stop_project() { bash scripts/down.sh "$CONF_DIR" --keep-db >/dev/null 2>&1 || true; }

# start_original BUILD_DIR NAME
start_original() {
    [[ -x "$ORIG_TOOLS/up.sh" ]] || die "no $ORIG_TOOLS/up.sh (set TT_ORIG_TOOLS)"
    # The original listens on conf/'s ports: this checkout's conf/ stack goes first.
    bash scripts/down.sh conf --keep-db >/dev/null 2>&1 || true
    # Daemons of another build are stopped; its MariaDB and Redis stay.
    bash "$ORIG_TOOLS/down.sh" http_msg_server msg_server2 msg_server msfs push_server \
        file_server login_server route_server db_proxy_server >/dev/null 2>&1 || true
    say "starting the original's stack ($2, $1)"
    orig_up=1
    TT_ORIG="$ORIG" TT_ORIG_BUILD="$1" TT_ORIG_USERS=$ORIG_USERS bash "$ORIG_TOOLS/up.sh" \
        >"$run_dir/up-$2.log" 2>&1 9>&- ||
        { tail -n 30 "$run_dir/up-$2.log" >&2; die "the original's stack did not start"; }
    STACK="$2"
    LOGIN_URL="http://127.0.0.1:8080"
    MSG_SERVERS="127.0.0.1:8000,127.0.0.1:8001"
    API="http://127.0.0.1:8400"
    MYSQL="127.0.0.1:3306"
    cpu_pid=()
    local n
    for n in db_proxy_server route_server login_server msg_server msg_server2 mysqld redis; do
        cpu_pid[$n]="$(awk '{ print $1 }' "$ORIG/run/pids/$n.pid")"
    done
    MSG_PID="${cpu_pid[msg_server]}"
    MYSQL_CNF="$ORIG/var/mysql/my.cnf"
    check_durability
}

# ---- the scenarios -------------------------------------------------------------------------

# The load generators: this checkout's release build, or TT_BENCH_TOOLS (a directory holding
# tt-load and tt-bench, e.g. another checkout's target/release: the same clients for two trees).
TOOLS="${TT_BENCH_TOOLS:-$TT_ROOT/target/release}"
TT_LOAD="$TOOLS/tt-load"
TT_BENCH="$TOOLS/tt-bench"
# The chat steps' generator: tt-bench chat (one thread for all clients), or tt-load (a thread a
# client, the former generator) with TT_BENCH_CHAT_TOOL=tt-load.
CHAT_TOOL="${TT_BENCH_CHAT_TOOL:-tt-bench}"
[[ "$CHAT_TOOL" =~ ^(tt-bench|tt-load)$ ]] || die "TT_BENCH_CHAT_TOOL: tt-bench or tt-load, not $CHAT_TOOL"

# check_status STATUS WHAT LOG: exit status 1 of a load generator is a failed check (an acked
# message lost or duplicated, msg ids not consecutive): this project's fails the bench, the
# original's is reported (its first-contact race, see ../shared/original/README.md).
check_status() {
    (($1 == 1)) || return 0
    say "$STACK: $2: the load generator found acked messages lost or duplicated, or msg id gaps ($3)"
    [[ "$STACK" != project ]] || failed_check=1
}

scenario_idle() {
    local log="$run_dir/$STACK-idle.log" bind=() per kb logged
    # About 28 000 ephemeral ports per source address: one address per 20 000 connections.
    ((idle_conns > 20000)) && bind=(--bind "127.0.0.1*$(((idle_conns + 19999) / 20000))")
    say "$STACK: idle: $idle_conns connections on one msg_server (load $(loadavg))"
    local load
    load="$(loadavg)"
    cur_scenario=idle cur_step=$idle_conns
    run_gen "$log" "" 1 "$TT_LOAD" --msg-server "${MSG_SERVERS%%,*}" --hold 5 --users "$idle_conns" \
        --first-user "$idle_first" --client-type mobile --logins 200 --rss-pid "$MSG_PID" \
        --deadline 900 "${bind[@]}"
    per="$(sed -n 's/^RSS per held connection: \([0-9.]*\) bytes.*/\1/p' "$log" | tail -n 1)"
    logged="$(sed -n 's/^logged in: \([0-9]*\) of [0-9]* in \([0-9.]*s\).*/\1 in \2/p' "$log" | tail -n 1)"
    if [[ -n "$per" ]]; then
        kb="$(awk -v b="$per" 'BEGIN { printf "%.2f", b / 1024 }')"
        row "$STACK" idle "$idle_conns" "$kb kB" "logins: $logged" "$load"
    else
        row "$STACK" idle "$idle_conns" failed "see $log" "$load"
    fi
}

scenario_logins() {
    local log="$run_dir/$STACK-logins.log" load line
    load="$(loadavg)"
    say "$STACK: logins: 4 workers, ${login_secs}s (load $load)"
    cur_scenario=logins cur_step=4
    run_gen "$log" "" "$((login_secs - 1))" "$TT_BENCH" logins --login-url "$LOGIN_URL" --workers 4 \
        --first-user "$first_user" --users 1000 --duration "$login_secs"
    line="$(grep -a '^logins ' "$log" | tail -n 1 || true)"
    if [[ -n "$line" ]]; then
        row "$STACK" logins 4 "$(awk '{ print $5 }' <<<"$line")" \
            "p99 $(field "$log" '^logins ' p99) errors $(field "$log" '^logins ' errors);$cpu_line" "$load"
    else
        row "$STACK" logins 4 failed "see $log" "$load"
    fi
}

# One chat step: P pairs, R messages a second from each sender.
chat_step() {
    local pairs=$1 rate=$2 log="$run_dir/$STACK-chat-$1x$2.log" load status
    load="$(loadavg)"
    cur_scenario=chat cur_step="$pairs pairs x $rate/s"
    local c0 c1
    c0="$(db_counters)"
    if [[ "$CHAT_TOOL" == tt-load ]]; then
        run_gen "$log" 'clients logged in' "$step_secs" "$TT_LOAD" --login-url "$LOGIN_URL" --users $((2 * pairs)) \
            --first-user "$first_user" --duration "$step_secs" --rate "$rate" --window 1 \
            --client-type mobile --logins 200 --ack-timeout 10 --drain 10 \
            --deadline $((step_secs + 120))
    else
        run_gen "$log" 'clients logged in' "$step_secs" "$TT_BENCH" chat --login-url "$LOGIN_URL" \
            --pairs "$pairs" --first-user "$first_user" --duration "$step_secs" --rate "$rate" \
            --client-type mobile --logins 8 --ack-timeout 10 --drain 10
    fi
    status=$gen_status
    c1="$(db_counters)"
    # Messages a transaction: rows per explicit COMMIT, or per INSERT when the INSERTs outnumber
    # what the COMMITs could hold (one a shard table: autocommit statements); fsyncs a message.
    step_batch="$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " ")
        r = y[1] - x[1]; c = y[2] - x[2]; i = y[3] - x[3]
        if (r <= 0) print 1; else if (c > 0 && i <= 8 * c) printf "%.1f", r / c; else printf "%.1f", r / (i > 0 ? i : r) }')"
    local fsyncs
    fsyncs="$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " ")
        r = y[1] - x[1]; f = y[4] - x[4]; if (r > 0) printf "%.2f", f / r; else print "?" }')"
    check_status "$status" "chat $cur_step" "$log"
    step_acked="$(sed -n 's/^acked [0-9]* msgs in [0-9.]*s: \([0-9]*\) msgs\/s.*/\1/p' "$log" | tail -n 1)"
    step_p99="$(num "$(field "$log" '^ack latency' p99)")"
    local lost
    lost="$(sed -n 's/^delivered [0-9]* lost \([0-9]*\) duplicated \([0-9]*\).*/lost \1 dup \2/p' "$log" | tail -n 1)"
    if [[ -n "$step_acked" ]]; then
        row "$STACK" chat "$cur_step" "$step_acked" "offered $((pairs * rate)) p99 ${step_p99}ms ${lost:-} exit $status rows/commit $step_batch fsyncs/row $fsyncs;$cpu_line" "$load"
    else
        step_acked=0 step_p99=999999
        row "$STACK" chat "$cur_step" failed "see $log" "$load"
    fi
    say "$STACK: chat $cur_step: offered $((pairs * rate))/s acked ${step_acked}/s p99 ${step_p99}ms (load $load)"
}

scenario_chat() {
    local max_pairs=0 step pairs rate saturated=0
    knee_acked=0 knee_batch=1
    for step in "${chat_steps[@]}"; do ((${step%%:*} <= max_pairs)) || max_pairs=${step%%:*}; done
    # Every pair exchanges one message first: relations and sessions exist before the steps.
    say "$STACK: chat: warming up $max_pairs pairs"
    "$TT_LOAD" --login-url "$LOGIN_URL" --users $((2 * max_pairs)) --first-user "$first_user" \
        --messages 1 --window 1 --client-type mobile --logins 200 --deadline 120 \
        >"$run_dir/$STACK-chat-warmup.log" 2>&1 9>&- || true
    for step in "${chat_steps[@]}"; do
        pairs=${step%%:*} rate=${step#*:}
        if [[ "$STACK" != project ]] && ((rate >= 20)); then
            say "$STACK: chat $pairs pairs x $rate/s skipped: the original drops what one connection sends beyond 20 a second"
            continue
        fi
        chat_step "$pairs" "$rate"
        if awk -v p="$step_p99" -v a="$step_acked" -v k="$knee_acked" 'BEGIN { exit !(p <= 100 && a > k) }'; then
            knee_acked=$step_acked knee_batch=$step_batch
        fi
        if awk -v a="$step_acked" -v o="$((pairs * rate))" 'BEGIN { exit !(a < 0.85 * o) }'; then
            saturated=$((saturated + 1))
            ((saturated < 2)) || break
        else
            saturated=0
        fi
    done
    row "$STACK" knee "$(awk -v b="$knee_batch" 'BEGIN { printf "%d", b + 0.5 }')" "$knee_acked" "rows/commit $knee_batch" "$(loadavg)"
    return 0
}

scenario_group() {
    local rate log load status line
    for rate in "${group_rates[@]}"; do
        log="$run_dir/$STACK-group-$rate.log"
        load="$(loadavg)"
        cur_scenario=group cur_step=$rate
        run_gen "$log" 'members logged in' "$step_secs" "$TT_BENCH" group --login-url "$LOGIN_URL" --api "$API" \
            --first-user "$group_first" --members "$group_members" --senders "$group_senders" \
            --rate "$rate" --duration "$step_secs" --drain 10
        status=$gen_status
        check_status "$status" "group at $rate msgs/s per sender" "$log"
        line="$(grep -a '^group delivered' "$log" | tail -n 1 || true)"
        if [[ -z "$line" ]]; then
            row "$STACK" group "$rate" failed "see $log" "$load"
            say "$STACK: group at $rate msgs/s per sender failed (see $log)"
            break
        fi
        local per_s p99 acked
        per_s="$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "deliveries/s") print $i }' <<<"$line")"
        p99="$(num "$(field "$log" '^group delivered' p99)")"
        acked="$(sed -n 's/^group acked [0-9]* msgs in [0-9.]*s: \([0-9.]*\) msgs\/s.*/\1/p' "$log" | tail -n 1)"
        row "$STACK" group "$rate" "$per_s" "msgs/s $acked p99 ${p99}ms exit $status;$cpu_line" "$load"
        say "$STACK: group: $group_senders senders x $rate msgs/s: $acked msgs/s acked, $per_s deliveries/s, p99 ${p99}ms (load $load)"
        # Past saturation: deliveries far behind what was offered.
        awk -v d="$per_s" -v o="$(awk -v r="$rate" -v s="$group_senders" -v m="$group_members" 'BEGIN { print r * s * (m - 1) }')" \
            'BEGIN { exit !(d < 0.7 * o) }' && break
    done
    return 0
}

scenario_raw() {
    local b log load line batches=("${raw_batches[@]}") knee_b
    # Also the rows a transaction of the chat knee (the message path's batch size there).
    knee_b="$(awk -v b="${knee_batch:-1}" 'BEGIN { printf "%d", b + 0.5 }')"
    [[ " ${batches[*]} " == *" $knee_b "* ]] || batches+=("$knee_b")
    for b in "${batches[@]}"; do
        log="$run_dir/$STACK-raw-$b.log"
        load="$(loadavg)"
        say "$STACK: raw inserts, 8 connections, $b rows a transaction (load $load)"
        "$TT_BENCH" rawinsert --mysql "$MYSQL" --workers 8 --batch "$b" --duration "$raw_secs" \
            >"$log" 2>&1 9>&- || true
        line="$(grep -a '^rawinsert ' "$log" | tail -n 1 || true)"
        if [[ -n "$line" ]]; then
            row "$STACK" raw "$b" "$(awk '{ print $6 }' <<<"$line")" "commit p99 $(field "$log" '^rawinsert ' p99)" "$load"
        else
            row "$STACK" raw "$b" failed "see $log" "$load"
        fi
    done
    return 0
}

run_scenarios() {
    local s
    for s in idle logins chat group raw; do
        want "$s" && "scenario_$s"
    done
    return 0
}

# ---- run -----------------------------------------------------------------------------------

if ((project)); then
    start_project
    [[ -x "$TT_LOAD" && -x "$TT_BENCH" ]] || die "$TT_LOAD or $TT_BENCH is missing"
    run_scenarios
    stop_project
elif [[ -z "${TT_BENCH_TOOLS:-}" ]]; then
    say "building tt-load and tt-bench (release)"
    cargo build -q --release -p tt-client -p tt-bench --bins
fi
if ((original)); then
    stop_project
    for variant in "build:original" "build-rel:original-O3"; do
        dir="$ORIG/${variant%%:*}"
        if [[ ! -x "$dir/bin/msg_server" ]]; then
            say "no $dir/bin/msg_server: ${variant#*:} skipped (build it with $ORIG_TOOLS/build.sh)"
            continue
        fi
        start_original "$dir" "${variant#*:}"
        run_scenarios
    done
    bash "$ORIG_TOOLS/down.sh" >/dev/null 2>&1 || true
    orig_up=0
fi

# ---- the table -----------------------------------------------------------------------------

# stacks in the order they ran
mapfile -t stacks < <(awk -F'\t' 'NR > 1 && !seen[$1]++ { print $1 }' "$results")
cell() { # cell STACK SCENARIO: the summary of a scenario on a stack
    awk -F'\t' -v st="$1" -v sc="$2" '
        function p99(d) { if (match(d, /p99 [0-9.]+/)) return substr(d, RSTART + 4, RLENGTH - 4) + 0; return 1e9 }
        $1 != st || $2 != sc { next }
        $4 == "failed" { failed = failed " " $3; next }
        sc == "chat" || sc == "group" {
            v = $4 + 0
            if (v > top) { top = v; top_d = $3; top_p = p99($5) }
            if (p99($5) <= 100 && v > knee) { knee = v; knee_d = $3; knee_p = p99($5) }
            next
        }
        sc == "raw" { if ($4 + 0 > best) { best = $4 + 0; best_b = $3 }; if ($3 == 1) one = $4 + 0; next }
        { out = $4; det = $5 }
        END {
            unit = (sc == "chat") ? "" : " msgs/s per sender"
            if (sc == "chat" || sc == "group") {
                if (top == 0) { print (failed != "" ? "failed" : "–"); exit }
                if (knee > 0) k = sprintf("%d (%s%s, p99 %.1f ms)", knee, knee_d, unit, knee_p)
                else k = "none with p99 <= 100 ms"
                printf "%s; top %d (%s%s, p99 %.0f ms)\n", k, top, top_d, unit, top_p
            } else if (sc == "raw") {
                if (best == 0) print (failed != "" ? "failed" : "–")
                else printf "%d rows/s (%s rows a commit); 1 row a commit: %d\n", best, best_b, one
            } else if (out == "") {
                print (failed != "" ? "failed" : "–")
            } else {
                sub(/;.*/, "", det)
                print out " (" det ")"
            }
        }' "$results"
}
knee_of() { # the chat knee of STACK, or 0
    awk -F'\t' -v st="$1" '$1 == st && $2 == "chat" && $4 != "failed" {
        if (match($5, /p99 [0-9.]+/) && substr($5, RSTART + 4, RLENGTH - 4) + 0 <= 100 && $4 + 0 > k) k = $4 + 0 }
        END { print k + 0 }' "$results"
}
raw_at_knee() { # rows/s of STACK's raw inserts at the chat knee's rows a commit, or 0
    awk -F'\t' -v st="$1" '$1 == st && $2 == "knee" { b = $3 } $1 == st && $2 == "raw" { r[$3] = $4 + 0 }
        END { print r[b] + 0 }' "$results"
}
raw_best() {
    awk -F'\t' -v st="$1" '$1 == st && $2 == "raw" && $4 + 0 > b { b = $4 + 0 } END { print b + 0 }' "$results"
}

{
    printf '\n| scenario |'
    printf ' %s |' "${stacks[@]}"
    printf '\n|---|'
    printf -- '---|%.0s' "${stacks[@]}"
    printf '\n'
    labels=(
        "idle:$idle_conns idle logged-in connections: RSS per connection of msg_server"
        "logins:full logins/s, 4 workers"
        "chat:single chat acked/s: knee (p99 send->ack <= 100 ms); top"
        "group:group fan-out, $group_members members, $group_senders senders: deliveries/s: knee (p99 <= 100 ms); top"
        "raw:raw-insert limit, 8 connections: best rows/s"
    )
    for l in "${labels[@]}"; do
        want "${l%%:*}" || continue
        printf '| %s |' "${l#*:}"
        for st in "${stacks[@]}"; do printf ' %s |' "$(cell "$st" "${l%%:*}")"; done
        printf '\n'
    done
    if want chat && want raw; then
        printf '| chat knee / raw-insert limit: at the rows a commit of the knee; best |'
        for st in "${stacks[@]}"; do
            printf ' %s |' "$(awk -v k="$(knee_of "$st")" -v a="$(raw_at_knee "$st")" -v r="$(raw_best "$st")" -v b="$(awk -F'\t' -v st="$st" '$1 == st && $2 == "knee" { print $3 }' "$results")" \
                'BEGIN { if (r > 0 && k > 0) { if (a > 0) printf "%.0f %% of %d (%s a commit); ", 100 * k / a, a, b
                    printf "%.0f %% of %d\n", 100 * k / r, r } else print "–" }')"
        done
        printf '\n'
    fi
    printf '\nLoad average (1 min) before each scenario, per stack: '
    for st in "${stacks[@]}"; do
        printf '%s %s; ' "$st" "$(awk -F'\t' -v st="$st" '$1 == st { printf "%s ", $6 }' "$results")"
    done
    printf '\nEvery step, with the CPU of each process: %s (and cpu.tsv beside it)\n' "$results"
} | tee "$run_dir/table.md"

if ((failed_check)); then
    say "FAIL: a load generator found an acked message lost or duplicated (logs in $run_dir)"
    exit 1
fi
