#!/bin/bash
# c2s.sh: the c2s benchmark (what `make bench` runs). Starts a private jabberd2 and the proxy on
# loopback and measures, in one run, with the baselines next to the numbers:
#   (a) the crypto floor: mbedTLS's own CPU cost of a TLS 1.3 handshake's asymmetric work
#       (crypto-floor), measured again right before and right after each case of (b), because
#       the speed of a shared VM drifts by tens of percent within minutes;
#   (b) the proxy's CPU per session setup (TLS handshake + XMPP stream + backend connection and
#       features + closing), full and resumed, Direct TLS and STARTTLS: its utime+stime from
#       /proc/PID/stat before and after K sessions, divided by K;
#   (c) the proxy's RSS per idle session: VmRSS before and while N sessions are held open;
#   (d) the one-way message latency the proxy adds: the same logged-in pairs and message rate
#       straight to jabberd2 (plaintext, the floor) and through the proxy (STARTTLS), at the
#       main load and at a light one (jabberd2's own latency swamps the proxy's at high load).
# Then prints a table. About 2 minutes on 2 vCPUs; nothing is built here.
#
#   bench/c2s.sh BUILD_DIR
#
# BUILD_DIR holds xmpp-tls-proxy and bench/{xtp-load,crypto-floor} (the normal CMake build).
# Environment (defaults in brackets): XTP_BENCH_PORT_BASE [23200]: jabberd2 c2s listens on
# BASE+22, the proxy on BASE+23 (STARTTLS) and BASE+24 (Direct TLS), all on 127.0.0.1;
# XTP_BENCH_HANDSHAKES [2000] sessions per case in (b); XTP_BENCH_CONCURRENCY [16] sessions in
# setup at a time; XTP_BENCH_IDLE [1000] sessions in (c); XTP_BENCH_PAIRS [100],
# XTP_BENCH_RATE [20] messages/s per session, XTP_BENCH_DURATION [10] seconds for (d), whose
# light load is 10 pairs at 2 messages/s for 10 s;
# XTP_BENCH_PERF=1 also samples the proxy with `perf record --call-graph dwarf` during the first
# full Direct TLS case and prints how its CPU splits between the asymmetric crypto and the rest; XTP_BENCH_KEEP=1 keeps the work folder (logs) after success.
#
# Every process started here is stopped on exit (trap). Exit status: 0 when every run was
# clean, 1 when a run reported errors (the table still prints, marked), 2 on bad usage or when
# the servers could not start.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
DOMAIN=example.test
BASE=${XTP_BENCH_PORT_BASE:-23200}
K=${XTP_BENCH_HANDSHAKES:-2000}
CONC=${XTP_BENCH_CONCURRENCY:-16}
IDLE=${XTP_BENCH_IDLE:-1000}
PAIRS=${XTP_BENCH_PAIRS:-100}
RATE=${XTP_BENCH_RATE:-20}
DURATION=${XTP_BENCH_DURATION:-10}
CERTS=$SRC/tests/certs

die() {
    printf 'c2s.sh: %s\n' "$*" >&2
    exit 2
}

[ $# -eq 1 ] || die "usage: bench/c2s.sh BUILD_DIR"
[ -d "$1" ] || die "no build folder $1"
BUILD=$(cd "$1" && pwd)
PROXY=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
LOAD=$BUILD/bench/xtp-load
FLOOR=$BUILD/bench/crypto-floor
for f in "$PROXY" "$LOAD" "$FLOOR"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD)"
done
for v in BASE K CONC IDLE PAIRS RATE DURATION; do
    case "${!v}" in
    '' | *[!0-9]*) die "$v must be a whole number, not '${!v}'" ;;
    esac
done
{ [ "$BASE" -ge 1024 ] && [ "$BASE" -le 65000 ]; } || die "XTP_BENCH_PORT_BASE out of range: $BASE"
# A listening port inside the ephemeral range can be the local port of a connection still in
# TIME-WAIT (the load generator's own, from an earlier run), and then bind() fails.
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
[ $((BASE + 24)) -lt "$eph_lo" ] || [ $((BASE + 22)) -gt "$eph_hi" ] ||
    die "ports $((BASE + 22))-$((BASE + 24)) overlap the ephemeral range $eph_lo-$eph_hi: set XTP_BENCH_PORT_BASE"
BACKEND_PORT=$((BASE + 22))
STARTTLS_PORT=$((BASE + 23))
DIRECT_PORT=$((BASE + 24))
LIGHT_PAIRS=10 # the light load of (d)
USERS=$((PAIRS > LIGHT_PAIRS ? PAIRS * 2 : LIGHT_PAIRS * 2))

# Descriptors: the proxy holds two per session (peer and backend), jabberd2's c2s one.
need=$((IDLE * 2 + 512))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    die "ulimit -Hn is $hard; $IDLE idle sessions need $need descriptors"
fi
[ "$hard" != unlimited ] || hard=$((need > 65536 ? need : 65536))
ulimit -n "$hard"

for p in "$BACKEND_PORT" "$STARTTLS_PORT" "$DIRECT_PORT"; do
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] ||
        die "port $p is in use (set XTP_BENCH_PORT_BASE to move all three)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xtp-bench.XXXXXX")
PROXY_PID=
LOAD_PID=
PERF_PID=
RC=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_pid "$LOAD_PID"
    stop_pid "$PERF_PID"
    stop_pid "$PROXY_PID"
    "$SRC/scripts/jabberd2-local.sh" stop "$WORK/jabberd2" >/dev/null 2>&1
    if [ "$rc" -eq 0 ] && [ "${XTP_BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        printf 'c2s.sh: logs kept in %s\n' "$WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)

# cpu_ticks PID: utime + stime of the process (all threads), in clock ticks (proc(5) fields
# 14 and 15; the command name is cut off first since it may hold spaces).
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# load NAME ARGS...: runs xtp-load, output in WORK/NAME.out; a failing run marks the table.
load() {
    local name=$1 rc=0
    shift
    "$LOAD" --domain "$DOMAIN" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf 'c2s.sh: run %s exited with %d:\n' "$name" "$rc" >&2
        tail -n 5 "$WORK/$name.err" >&2
        RC=1
    fi
    grep -q '^RESULT ' "$WORK/$name.out" || die "run $name printed no result (see $WORK/$name.err)"
}

# ---- servers ----------------------------------------------------------------------------
printf 'c2s.sh: starting jabberd2 (%d users) and the proxy in %s\n' "$USERS" "$WORK" >&2
# jabberd2's c2s refuses descriptors past <max_fds> (1024 in Debian's c2s.xml): a private copy
# of its configuration with room for the idle sessions.
mkdir -p "$WORK/etc"
cp -r "${JABBERD2_ETC:-/etc/jabberd2}/." "$WORK/etc/"
sed -i "s#<max_fds>[0-9]*</max_fds>#<max_fds>$need</max_fds>#" "$WORK/etc/c2s.xml"
users=""
for ((i = 0; i < USERS; i++)); do users="$users user$i:secret"; done
JABBERD2_ETC=$WORK/etc JABBERD2_USERS=$users \
    "$SRC/scripts/jabberd2-local.sh" start "$WORK/jabberd2" "$DOMAIN" "$BACKEND_PORT" >/dev/null ||
    die "jabberd2 did not start"
C2S_PID=$(awk '$1 == "c2s" { print $2 }' "$WORK/jabberd2/pids")

cat >"$WORK/proxy.yaml" <<EOF
log: { level: info }
tls: { min_version: "1.2" }
domains:
  $DOMAIN:
    cert: $CERTS/$DOMAIN.crt
    key: $CERTS/$DOMAIN.key
    backend: { c2s: "127.0.0.1:$BACKEND_PORT" }
listeners:
  - { name: c2s, listen: "127.0.0.1:$STARTTLS_PORT", kind: c2s, tls: starttls }
  - { name: c2s-direct, listen: "127.0.0.1:$DIRECT_PORT", kind: c2s, tls: direct }
limits: { max_stanza: 256KiB, handshake_timeout: 10s, max_connections: 20000 }
EOF
"$PROXY" -c "$WORK/proxy.yaml" </dev/null 2>"$WORK/proxy.log" &
PROXY_PID=$!
wait_port "$STARTTLS_PORT" && wait_port "$DIRECT_PORT" ||
    die "the proxy does not listen on $STARTTLS_PORT/$DIRECT_PORT (see $WORK/proxy.log)"

# ---- (a) crypto floor -------------------------------------------------------------------
printf 'c2s.sh: (a) crypto floor\n' >&2
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
"$FLOOR" --key "$CERTS/$DOMAIN.key" -n 500 >"$WORK/floor.out" || die "crypto-floor failed"

# ---- (c) RSS per idle session, on the fresh proxy ----------------------------------------
printf 'c2s.sh: (c) %d idle STARTTLS sessions\n' "$IDLE" >&2
rss0=$(rss_kb "$PROXY_PID")
c2s_rss0=$(rss_kb "$C2S_PID")
rm -f "$WORK/idle.ready"
"$LOAD" --domain "$DOMAIN" --mode starttls --port "$STARTTLS_PORT" -n "$IDLE" -c "$CONC" \
    --hold 4 --ready-file "$WORK/idle.ready" --timeout 90 >"$WORK/idle.out" 2>"$WORK/idle.err" &
LOAD_PID=$!
for ((i = 0; i < 900; i++)); do # 90 s
    [ -f "$WORK/idle.ready" ] && break
    kill -0 "$LOAD_PID" 2>/dev/null || break
    sleep 0.1
done
[ -f "$WORK/idle.ready" ] || die "the idle sessions never all came up (see $WORK/idle.err)"
sleep 1 # let the last features and tickets settle
rss1=$(rss_kb "$PROXY_PID")
c2s_rss1=$(rss_kb "$C2S_PID")
idle_rc=0
wait "$LOAD_PID" || idle_rc=$?
LOAD_PID=
[ "$idle_rc" -eq 0 ] || {
    printf 'c2s.sh: idle run exited with %d\n' "$idle_rc" >&2
    tail -n 5 "$WORK/idle.err" >&2
    RC=1
}
IDLE_UP=$(result up "$WORK/idle.out")
IDLE_TLS=$(result tls_version "$WORK/idle.out")
IDLE_CIPHER=$(result cipher "$WORK/idle.out")

# ---- (b) proxy CPU per session setup --------------------------------------------------------
# case: label|mode|port|xtp-load options. Full handshakes skip certificate verification in the
# client (it is the bottleneck here, and a full handshake is known to be full); resumed cases
# verify, which is how xtp-load tells resumed from full handshakes.
cases=(
    "Direct TLS, TLS 1.3 full, x25519|direct|$DIRECT_PORT|"
    "STARTTLS, TLS 1.3 full, x25519|starttls|$STARTTLS_PORT|"
    "Direct TLS, TLS 1.3 full, secp256r1|direct|$DIRECT_PORT|--group secp256r1"
    "Direct TLS, TLS 1.3 resumed (psk_dhe_ke)|direct|$DIRECT_PORT|--resume --ca $CERTS/ca.crt"
    "STARTTLS, TLS 1.3 resumed (psk_dhe_ke)|starttls|$STARTTLS_PORT|--resume --ca $CERTS/ca.crt"
    "Direct TLS, TLS 1.2 full, x25519|direct|$DIRECT_PORT|--tls 1.2"
    "Direct TLS, TLS 1.2 resumed (ticket)|direct|$DIRECT_PORT|--tls 1.2 --resume --ca $CERTS/ca.crt"
)
declare -a B_LABEL B_CPU B_SRV_RES B_FLOOR B_FLOOR_RANGE
n=0
for c in "${cases[@]}"; do
    IFS='|' read -r label mode port extra <<<"$c"
    printf 'c2s.sh: (b) %s: %d sessions\n' "$label" "$K" >&2
    fkey=floor_x25519_us
    case "$label" in *secp256r1*) fkey=floor_p256_us ;; esac
    "$FLOOR" --key "$CERTS/$DOMAIN.key" -n 200 >"$WORK/floor$n.before" || die "crypto-floor failed"
    log0=$(wc -l <"$WORK/proxy.log")
    if [ "$n" -eq 0 ] && [ "${XTP_BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
        perf record --call-graph dwarf,16384 -F 499 -o "$WORK/perf.data" -p "$PROXY_PID" \
            >/dev/null 2>&1 &
        PERF_PID=$!
        sleep 0.5
    fi
    t0=$(cpu_ticks "$PROXY_PID")
    # shellcheck disable=SC2086 # extra holds several options
    load "b$n" --mode "$mode" --port "$port" -n "$K" -c "$CONC" --timeout 60 $extra
    t1=$(cpu_ticks "$PROXY_PID")
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID" 2>/dev/null
        wait "$PERF_PID" 2>/dev/null || true
        PERF_PID=
    fi
    "$FLOOR" --key "$CERTS/$DOMAIN.key" -n 200 >"$WORK/floor$n.after" || die "crypto-floor failed"
    B_FLOOR_RANGE[n]="$(result $fkey "$WORK/floor$n.before")-$(result $fkey "$WORK/floor$n.after")"
    B_FLOOR[n]=$(awk -v a="$(result $fkey "$WORK/floor$n.before")" \
        -v b="$(result $fkey "$WORK/floor$n.after")" 'BEGIN { printf "%.0f", (a + b) / 2 }')
    B_LABEL[n]=$label
    # CPU per session in microseconds; the primer of a resumed case is one more session.
    sessions=$K
    case "$extra" in *--resume*) sessions=$((K + 1)) ;; esac
    B_CPU[n]=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v k="$sessions" \
        'BEGIN { printf "%.0f", d * 1e6 / hz / k }')
    B_SRV_RES[n]=$(tail -n +"$((log0 + 1))" "$WORK/proxy.log" | grep -c ' open .*resumed=yes' || true)
    n=$((n + 1))
done

# ---- (d) message latency: straight to jabberd2, then through the proxy --------------------------
# workload: name|pairs|rate|seconds
workloads=("main|$PAIRS|$RATE|$DURATION" "light|$LIGHT_PAIRS|2|10")
for w in "${workloads[@]}"; do
    IFS='|' read -r wname wpairs wrate wsecs <<<"$w"
    lat_args=(-n $((wpairs * 2)) -c "$CONC" --login --rate "$wrate" --duration "$wsecs" --timeout 90)
    printf 'c2s.sh: (d) %d pairs, %d msg/s each, %d s: straight to jabberd2\n' "$wpairs" "$wrate" "$wsecs" >&2
    load "plain-$wname" --mode plain --port "$BACKEND_PORT" "${lat_args[@]}"
    printf 'c2s.sh: (d) the same through the proxy (STARTTLS)\n' >&2
    load "proxied-$wname" --mode starttls --port "$STARTTLS_PORT" "${lat_args[@]}"
done

# ---- the table ------------------------------------------------------------------------------
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
r() { result "$1" "$WORK/$2.out"; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }

printf '\nxmpp-tls-proxy c2s benchmark, %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf 'machine: %s vCPU (%s), %s %s; %s; load generator and servers share the machine\n' \
    "$(nproc)" "$cpu_model" "$(uname -s)" "$(uname -r)" "$("$PROXY" --version | sed -n 2p)"
printf 'load average at the start: %s, at the end: %s (other work on the machine skews CPU times)\n' \
    "$LOAD_AT_START" "$(cut -d' ' -f1-3 /proc/loadavg)"

printf '\n(a) crypto floor: mbedTLS CPU per operation (crypto-floor -n 500)\n'
sed -n 's/^  /    /p' "$WORK/floor.out"

printf '\n(b) proxy CPU per session setup (TLS handshake + stream + backend + close), %d sessions\n' "$K"
printf '    per case, concurrency %d; floor = crypto-floor (x25519 or secp256r1) just before and after\n' "$CONC"
printf '    the case (their mean; both in brackets); busy = CPU time / wall time of the case, for the\n'
printf '    proxy and for the load generator (one thread each: 100%% is a saturated core)\n'
printf '    %-40s %10s %24s %8s %10s %9s %20s %12s %11s %6s\n' case "proxy CPU" "floor [before-after]" \
    "vs floor" resumed sessions/s "setup p50/p90/p99 ms" "client CPU" "busy p/c" errors
for ((i = 0; i < n; i++)); do
    o="b$i"
    fl=${B_FLOOR[i]}
    resumed="-"
    case "${B_LABEL[i]}" in
    *resumed*) resumed="$(r resumed "$o")/${B_SRV_RES[i]}" ;;
    esac
    up=$(r up "$o")
    busy=$(awk -v cpu="${B_CPU[i]}" -v k="$K" -v s="$(r setup_s "$o")" -v c="$(r cpu_s "$o")" \
        'BEGIN { if (s > 0) printf "%.0f%%/%.0f%%", cpu * k / 1e6 / s * 100, c / s * 100 }')
    printf '    %-40s %7s us %5s [%6.0f-%6.0f] us %7sx %10s %9s %20s %9s ms %11s %6s\n' "${B_LABEL[i]}" "${B_CPU[i]}" \
        "$fl" "${B_FLOOR_RANGE[i]%-*}" "${B_FLOOR_RANGE[i]#*-}" "$(awk -v a="${B_CPU[i]}" -v b="$fl" 'BEGIN { printf "%.2f", a / b }')" "$resumed" \
        "$(r rate "$o")" "$(ms "$(r setup_p50_us "$o")")/$(ms "$(r setup_p90_us "$o")")/$(ms "$(r setup_p99_us "$o")")" \
        "$(awk -v c="$(r cpu_s "$o")" -v u="$up" 'BEGIN { printf "%.2f", u ? c * 1000 / u : 0 }')" \
        "$busy" "$(r errors "$o")"
done
printf '    resumed = handshakes the client saw resumed / "resumed=yes" lines in the proxy log\n'

printf '\n(c) RSS per idle session: %s STARTTLS sessions up (%s %s), held idle\n' \
    "$IDLE_UP" "$IDLE_TLS" "$IDLE_CIPHER"
awk -v a="$rss0" -v b="$rss1" -v n="$IDLE_UP" 'BEGIN {
    printf "    proxy VmRSS %d KB -> %d KB: %.1f KB per session\n", a, b, n ? (b - a) / n : 0 }'
awk -v a="$c2s_rss0" -v b="$c2s_rss1" -v n="$IDLE_UP" 'BEGIN {
    printf "    (jabberd2 c2s behind it: %d KB -> %d KB: %.1f KB per session)\n", a, b, n ? (b - a) / n : 0 }'

printf '\n(d) one-way message latency between logged-in pairs, 200-byte messages\n'
printf '    %-44s %9s %9s %9s %9s %14s %6s\n' "workload, path" p50 p90 p99 max "received/sent" errors
for w in "${workloads[@]}"; do
    IFS='|' read -r wname wpairs wrate wsecs <<<"$w"
    for o in "plain-$wname" "proxied-$wname"; do
        case "$o" in
        plain-*) label="$wpairs pairs x $wrate msg/s x $wsecs s, to jabberd2" ;;
        *) label="    the same through the proxy (STARTTLS)" ;;
        esac
        printf '    %-44s %6s ms %6s ms %6s ms %6s ms %14s %6s\n' "$label" "$(ms "$(r msg_p50_us "$o")")" \
            "$(ms "$(r msg_p90_us "$o")")" "$(ms "$(r msg_p99_us "$o")")" "$(ms "$(r msg_max_us "$o")")" \
            "$(r msgs_rcvd "$o")/$(r msgs_sent "$o")" "$(r errors "$o")"
    done
    awk -v p50="$(r msg_p50_us "plain-$wname")" -v p99="$(r msg_p99_us "plain-$wname")" \
        -v q50="$(r msg_p50_us "proxied-$wname")" -v q99="$(r msg_p99_us "proxied-$wname")" 'BEGIN {
        printf "        proxy vs direct: p50 %+.2f ms (x%.2f), p99 %+.2f ms (x%.2f)\n",
            (q50 - p50) / 1000, p50 ? q50 / p50 : 0, (q99 - p99) / 1000, p99 ? q99 / p99 : 0 }'
done

if [ -f "$WORK/perf.data" ]; then
    # Inclusive shares of the calls mbedTLS 3.6 makes for a TLS 1.3 handshake's asymmetric work
    # (they do not nest in each other): speed-independent, unlike the floor's microseconds.
    perf report -i "$WORK/perf.data" --children --sort symbol --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]+\.[0-9]+%' >"$WORK/perf.children" || true
    share() { awk -v s="$1" '$NF == s || $(NF - 2) == s { gsub("%", "", $1); print $1; exit }' "$WORK/perf.children"; }
    printf '\nperf (dwarf call graphs, %s samples): where the proxy CPU goes in "%s"\n' \
        "$(perf report -i "$WORK/perf.data" --stdio --sort pid 2>/dev/null | sed -n 's/^# Samples: \([0-9.kKM]*\).*/\1/p' | head -n 1)" \
        "${B_LABEL[0]}"
    total=0
    for sym in psa_export_public_key psa_generate_key psa_raw_key_agreement mbedtls_pk_sign; do
        v=$(share "$sym")
        v=${v:-0}
        total=$(awk -v a="$total" -v b="$v" 'BEGIN { print a + b }')
        printf '    %-28s %6.2f%%\n' "$sym" "$v"
    done
    awk -v t="$total" -v cpu="${B_CPU[0]}" 'BEGIN {
        printf "    asymmetric crypto in total   %6.2f%% = %.0f us of the %s us per session; the rest %.0f us\n",
            t, t * cpu / 100, cpu, (100 - t) * cpu / 100 }'
    printf '    top self time:\n'
    perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]+\.[0-9]+%' | sed -n '1,12p' | sed 's/^ */      /; s/ *- *- *$//' || true
fi
[ "$RC" -eq 0 ] || printf '\nc2s.sh: some runs reported errors (see above); numbers may be off\n' >&2
exit "$RC"
