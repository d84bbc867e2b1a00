#!/usr/bin/env bash
# Soak: many clients chatting at a steady rate for a long time, the memory of every daemon
# sampled as it goes.
#
#   scripts/soak.sh [--clients N] [--minutes M] [--rate R] [--logins L] [--profile P]
#                   [--client-type T] [--short]
#
#   --clients N   clients (users user1101 … user<1100+N>, N even, at most 10 000; default 10 000),
#                 half of them senders, each sending to its own receiver
#   --minutes M   how long the senders send (default 60; fractions allowed)
#   --rate R      messages a second per sender (default 0.1: 500 msgs/s for 10 000 clients;
#                 at most 18, under the soak stack's MsgRateLimit of 20)
#   --logins L    clients logging in at the same time (default 500)
#   --profile P   release (default) or debug: which build of the daemons and of tt-load runs
#   --client-type T  mobile (default) or pc: msg_server sends every PC connection each status
#                 change of every user, so N PC clients logging in cost N*N notifications
#                 (minutes of CPU for 10 000); mobile clients get none
#   --short       the CI variant: 300 clients, 1 minute, 1 message a second per sender,
#                 samples every 10 s, debug build (what scripts/test.sh has just built)
#
# Starts its own stack from conf/soak/ (scripts/up.sh conf/soak: other ports than conf/ and
# conf/alt/, on 127.0.0.1 only, beside the project-local MariaDB and Redis), logs every client in
# through login_server and runs tt-load for the given time. Every minute (--short: every 10 s) it
# prints one row: the resident memory (VmRSS) of each daemon and tt-load's acked and delivered
# counts. At the end it prints tt-load's summary (throughput, latencies, lost, duplicated) and
# stops the stack (scripts/down.sh conf/soak --keep-db). Everything it writes is under
# var/soak/<start time>/ (tt-load.log, rss.tsv); the daemons' logs are under var/stacks/soak/.
#
# Exit status: 0 when every acked message was delivered exactly once with its text and every
# daemon stayed up; 1 when a message was lost, duplicated or corrupted (tt-load exit status 1),
# a daemon died, nothing was acked or tt-load gave no summary; 2 bad usage. Messages that got no
# ack (a loaded machine can time one out) are reported, not failed: only what was acked counts.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

usage() {
    sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

clients=10000 minutes=60 rate=0.1 logins=500 profile="" client_type=mobile short=0
# --short sets the defaults; options given beside it (in any place) override them.
for a in "$@"; do
    [[ "$a" == --short ]] && short=1 clients=300 minutes=1 rate=1
done
while (($#)); do
    case "$1" in
    --clients | --minutes | --rate | --logins | --profile | --client-type)
        (($# >= 2)) || usage
        name="${1#--}"
        declare "${name//-/_}=$2"
        shift 2
        ;;
    --short) shift ;;
    -h | --help) usage ;;
    *)
        printf 'soak: unknown argument: %s\n' "$1" >&2
        usage
        ;;
    esac
done
profile="${profile:-$( ((short)) && echo debug || echo release)}"
[[ "$clients" =~ ^[0-9]+$ ]] && ((clients >= 2 && clients <= 10000 && clients % 2 == 0)) ||
    { printf 'soak: --clients must be even, 2..10000\n' >&2; exit 2; }
[[ "$logins" =~ ^[0-9]+$ ]] && ((logins >= 1 && logins < 2000)) ||
    { printf 'soak: --logins must be 1..1999 (MaxConnsPerIpBeforeLogin is 2000)\n' >&2; exit 2; }
awk -v m="$minutes" -v r="$rate" 'BEGIN { exit !(m > 0 && m <= 1440 && r > 0 && r <= 18) }' ||
    { printf 'soak: --minutes must be in (0, 1440], --rate in (0, 18]\n' >&2; exit 2; }
[[ "$profile" == release || "$profile" == debug ]] ||
    { printf 'soak: --profile must be release or debug\n' >&2; exit 2; }
[[ "$client_type" == mobile || "$client_type" == pc ]] ||
    { printf 'soak: --client-type must be mobile or pc\n' >&2; exit 2; }

CONF_DIR=conf/soak
# shellcheck source=scripts/stack.sh
. scripts/stack.sh "$CONF_DIR"
send_secs="$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 + 0.5 }')"
((send_secs >= 1)) || send_secs=1
sample_secs=60
((short)) && sample_secs=10
# Logging in is bounded by --logins at a time and 10 s a step: a generous allowance.
login_secs=$((120 + clients / 10))
# tt-load's own hard limit, and this script's: sending, logging in, draining, stopping.
load_deadline=$((send_secs + login_secs + 60))
script_deadline=$((SECONDS + load_deadline + 120))

# One descriptor per client in tt-load and per client connection in the msg_servers.
want_fds=$((clients + 1024))
hard_fds="$(ulimit -Hn)"
if [[ "$hard_fds" == unlimited ]]; then
    ulimit -n "$want_fds" 2>/dev/null || true
elif (($(ulimit -Sn) < want_fds)); then
    ulimit -n "$((hard_fds < want_fds ? hard_fds : want_fds))" 2>/dev/null || true
fi
(($(ulimit -Sn) >= want_fds)) ||
    die "$clients clients need $want_fds file descriptors; ulimit -n is $(ulimit -Sn) (hard $hard_fds)"
procs="$(ulimit -u)"
[[ "$procs" == unlimited ]] || ((procs >= clients + 512)) ||
    die "$clients clients need $((clients + 512)) threads; ulimit -u is $procs"

# One soak at a time per checkout: a second one would stop the first one's stack. The lock is
# this shell's alone: the daemons and tt-load are started without descriptor 9.
lock_run_dir soak
load_log="$run_dir/tt-load.log"
rss_tsv="$run_dir/rss.tsv"

load_pid=""
cleanup() {
    if [[ -n "$load_pid" ]] && kill -0 "$load_pid" 2>/dev/null; then
        kill "$load_pid" 2>/dev/null || true
    fi
    bash scripts/down.sh "$CONF_DIR" --keep-db >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A soak stack left running (an interrupted run) is stopped, so that every daemon starts fresh.
bash scripts/down.sh "$CONF_DIR" --keep-db >/dev/null
say "starting the soak stack ($profile build, confs from $CONF_DIR)"
TT_PROFILE="$profile" bash scripts/up.sh "$CONF_DIR" >"$run_dir/up.log" 2>&1 9>&- ||
    { cat "$run_dir/up.log" >&2; die "the soak stack did not start"; }
login_url="http://127.0.0.1:$(conf_value "$CONF_DIR/loginserver.conf" HttpPort)"
tt_load="$TT_ROOT/target/$profile/tt-load"
[[ -x "$tt_load" ]] || die "$tt_load is missing"

daemons=(dbproxyserver routeserver loginserver msgserver msgserver2)
declare -A pid_of
for d in "${daemons[@]}"; do
    pid_of[$d]="$(running_pid "$STACK_DIR/$d")" || die "$d of the soak stack is not running"
done

say "$clients $client_type clients (users 1101..$((1100 + clients))), $rate msgs/s per sender, $minutes min; logs in $run_dir"
"$tt_load" --login-url "$login_url" --first-user 1101 --users "$clients" \
    --duration "$send_secs" --rate "$rate" --logins "$logins" --client-type "$client_type" \
    --deadline "$load_deadline" --drain 30 >"$load_log" 2>&1 9>&- &
load_pid=$!

rss_mb() { # VmRSS of a pid in MB, or "dead"
    local kb
    kb="$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null)"
    if [[ -n "$kb" ]]; then awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }'; else echo dead; fi
}

died=""
start=$SECONDS
header="$(printf '%8s' elapsed; printf ' %13s' "${daemons[@]}"; printf ' %10s %10s' acked delivered)"
printf '%s\n' "RSS in MB of each daemon; acked and delivered: tt-load's counts so far"
printf '%s\n' "$header"
printf 'elapsed_s\t%s\tacked\tdelivered\n' "$(IFS=$'\t'; echo "${daemons[*]}")" >"$rss_tsv"
sample() {
    local row tsv mb progress acked delivered
    row="$(printf '%7ds' $((SECONDS - start)))"
    tsv="$((SECONDS - start))"
    for d in "${daemons[@]}"; do
        mb="$(rss_mb "${pid_of[$d]}")"
        [[ "$mb" == dead && "$died" != *"$d"* ]] && died+=" $d"
        row+="$(printf ' %13s' "$mb")"
        tsv+=$'\t'"$mb"
    done
    # tt-load prints "tt-load: <s>s acked <n> delivered <n>" every 5 s while sending.
    progress="$(grep -a '^tt-load: .* acked [0-9]* delivered [0-9]*$' "$load_log" | tail -n 1 || true)"
    acked="$(sed -n 's/.* acked \([0-9]*\) .*/\1/p' <<<"$progress")"
    delivered="$(sed -n 's/.* delivered \([0-9]*\)$/\1/p' <<<"$progress")"
    row+="$(printf ' %10s %10s' "${acked:--}" "${delivered:--}")"
    printf '%s\n' "$row"
    printf '%s\t%s\t%s\n' "$tsv" "${acked:--}" "${delivered:--}" >>"$rss_tsv"
}

sample
next=$((SECONDS + sample_secs))
while kill -0 "$load_pid" 2>/dev/null; do
    if ((SECONDS >= script_deadline)); then
        kill "$load_pid" 2>/dev/null || true
        die "deadline: tt-load still running $((load_deadline + 120)) s after the start (log: $load_log)"
    fi
    if ((SECONDS >= next)); then
        sample
        next=$((next + sample_secs))
    fi
    # Waiting for tt-load to end or for the next sample time, whichever comes first.
    sleep 1
done
load_status=0
wait "$load_pid" || load_status=$?
load_pid=""
sample

printf '\n'
say "tt-load exited with status $load_status; its summary:"
grep -a -E '^(tt-load: [0-9]+ clients logged in|acked |ack latency|delivery latency|delivered |total run time|error: |FAIL|note: |OK$)' "$load_log" |
    head -n 40 || true

summary="$(grep -a '^delivered [0-9]* lost ' "$load_log" | tail -n 1 || true)"
acked_total="$(grep -a '^acked [0-9]* msgs' "$load_log" | tail -n 1 | awk '{ print $2 }' || true)"
lost="$(sed -n 's/.* lost \([0-9]*\) .*/\1/p' <<<"$summary")"
duplicated="$(sed -n 's/.* duplicated \([0-9]*\) .*/\1/p' <<<"$summary")"
corrupted="$(sed -n 's/.* corrupted \([0-9]*\) .*/\1/p' <<<"$summary")"
failed=""
[[ -n "$summary" && -n "$acked_total" ]] || failed+=" tt-load gave no summary (log: $load_log);"
[[ -z "$died" ]] || failed+=" daemon(s) died:$died (logs under $STACK_DIR);"
((load_status != 1)) || failed+=" tt-load found lost, duplicated, corrupted or out-of-order messages;"
[[ -z "$summary" || ("$lost" == 0 && "$duplicated" == 0 && "$corrupted" == 0) ]] ||
    failed+=" lost $lost, duplicated $duplicated, corrupted $corrupted;"
[[ -z "$acked_total" || "$acked_total" -gt 0 ]] || failed+=" nothing was acked;"
for d in "${daemons[@]}"; do
    kill -0 "${pid_of[$d]}" 2>/dev/null || [[ "$died" == *"$d"* ]] || failed+=" $d died;"
done

printf '\nsoak: %s clients, %s msgs/s per sender, %s s of sending: acked %s, lost %s, duplicated %s, corrupted %s\n' \
    "$clients" "$rate" "$send_secs" "${acked_total:-?}" "${lost:-?}" "${duplicated:-?}" "${corrupted:-?}"
if [[ -n "$failed" ]]; then
    printf 'soak: FAIL:%s\n' "$failed" >&2
    exit 1
fi
((load_status == 0)) || say "tt-load's run was incomplete (status $load_status: unacked messages or a client error, see $load_log); nothing acked was lost"
say "OK: nothing acked was lost or duplicated, every daemon stayed up"
