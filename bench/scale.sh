#!/bin/bash
# scale.sh: many concurrent idle sessions on one machine, and the handshake latency of new
# sessions while they are held (issue 5, target 5: 20,000 sessions, probe p99 <= 50 ms).
#
#   bench/scale.sh BUILD_DIR [SESSIONS]        # SESSIONS: 20000 by default
#
# No process may hold more descriptors than `ulimit -Hn` allows (raising it needs
# CAP_SYS_RESOURCE), and the proxy holds two per session (peer and backend), jabberd2's c2s one,
# the load generator one. So the work is split into I instances, I = ceil(SESSIONS / cap) with
# cap = (ulimit -Hn - 1000) / 2 sessions per proxy (3 for 20,000 under a hard limit of 20,000).
# Instance i is:
#   proxy i       xmpp-tls-proxy, its own configuration, the same certificate, listening on
#                 BASE+2i+2 (Direct TLS, or STARTTLS with XTP_BENCH_MODE=starttls);
#   c2s i         a jabberd2 c2s process on BASE+2i+1 behind proxy i; every c2s is attached to
#                 the same router, sm and database (one jabberd2 server, several c2s components);
#   load i        an xtp-load process that opens SESSIONS/I sessions to proxy i and holds them.
# Sessions are not logged in: TLS, the stream header and the features (from jabberd2, through
# the proxy), then idle, as in compare.sh's idle case. Two or more instances on separate ports
# is how docs/scaling.md scales out; a balancer in front is left out (it would need its own
# descriptors).
#
# Phases, every one bounded in time:
#   1. probe, quiet     PROBE_RATE new sessions/s for PROBE_SECS s, spread over the instances
#                       (one xtp-load per instance, PROBE_RATE/I each, open loop); each session
#                       ends its stream once set up. Nothing else is open.
#   2. ramp             SESSIONS sessions at ARRIVAL/s in all (ARRIVAL/I per load process, open
#                       loop), then held idle.
#   3. probe, idle      the same probe while the SESSIONS sessions sit idle; afterwards the
#                       established connections are counted (ss) to show they were still open.
#   4. release          the load processes end their holds and close their sessions.
#   5. probe, quiet     the probe again, with nothing else open (the second baseline).
# Reported: the probes' TLS handshake latency p50/p90/p99/max (all probe processes' --latency-log
# lines merged; nearest rank), their ratio idle / quiet (mean of phases 1 and 5), the ramp's own
# percentiles, the proxies' CPU per session and VmRSS per session, jabberd2's c2s RSS, the
# load generators' CPU, the machine's load average, and the CPU of other work on the machine.
#
# Environment (defaults in brackets): XTP_BENCH_ARRIVAL [200] sessions/s of the ramp;
# XTP_BENCH_PROBE_RATE [50] and XTP_BENCH_PROBE_SECS [20]; XTP_BENCH_MODE [direct] or
# starttls; XTP_BENCH_INSTANCES [computed as above; at least that many]; XTP_BENCH_TLS_LIB
# [openssl if xtp-load has it, else mbedtls]; XTP_BENCH_PORT_BASE [23600]: ports BASE+1 to
# BASE+2I on 127.0.0.1, below the ephemeral range; XTP_BENCH_KEEP=1 keeps the work folder.
#
# Needs BUILD_DIR/xmpp-tls-proxy and BUILD_DIR/bench/xtp-load, jabberd2 2.7, sqlite3, python3,
# ss. Every process started here is stopped on exit (trap), and a watchdog ends the script
# after twice the ramp's time + 4 probes + 5 minutes (10 minutes with the defaults; a run takes
# about 3.5). Exit status: 0 when every run was clean, 1 when a run reported
# errors or sessions were lost (the table still prints), 2 on bad usage or when a server could
# not start.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
DOMAIN=example.test
CERTS=$SRC/tests/certs

die() {
    printf 'scale.sh: %s\n' "$*" >&2
    exit 2
}
say() { printf 'scale.sh: %s\n' "$*" >&2; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: bench/scale.sh BUILD_DIR [SESSIONS]"; fi
[ -d "$1" ] || die "no build folder $1"
BUILD=$(cd "$1" && pwd)
SESSIONS=${2:-20000}
PROXY=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
LOAD=$BUILD/bench/xtp-load
for f in "$PROXY" "$LOAD"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD)"
done
for c in sqlite3 python3 ss; do
    command -v "$c" >/dev/null || die "$c not found (scripts/deps.sh bench)"
done
[ -x /usr/sbin/jabberd2-c2s ] || die "jabberd2 not found (scripts/deps.sh bench)"

ARRIVAL=${XTP_BENCH_ARRIVAL:-200}
PROBE_RATE=${XTP_BENCH_PROBE_RATE:-50}
PROBE_SECS=${XTP_BENCH_PROBE_SECS:-20}
BASE=${XTP_BENCH_PORT_BASE:-23600}
MODE=${XTP_BENCH_MODE:-direct}
for v in SESSIONS ARRIVAL PROBE_RATE PROBE_SECS BASE; do
    case "${!v}" in
    '' | *[!0-9]*) die "$v must be a whole number, not '${!v}'" ;;
    esac
done
[ "$SESSIONS" -ge 1 ] || die "SESSIONS must be at least 1"
{ [ "$ARRIVAL" -ge 1 ] && [ "$PROBE_RATE" -ge 1 ] && [ "$PROBE_SECS" -ge 1 ]; } ||
    die "XTP_BENCH_ARRIVAL, _PROBE_RATE and _PROBE_SECS must be at least 1"
[ "$PROBE_SECS" -le 120 ] || die "XTP_BENCH_PROBE_SECS: at most 120"
case "$MODE" in direct | starttls) ;; *) die "XTP_BENCH_MODE must be direct or starttls" ;; esac
TLS_LIB=${XTP_BENCH_TLS_LIB:-}
if [ -z "$TLS_LIB" ]; then
    TLS_LIB=mbedtls
    "$LOAD" --help | grep -q 'or openssl' && TLS_LIB=openssl
fi
case "$TLS_LIB" in mbedtls | openssl) ;; *) die "XTP_BENCH_TLS_LIB must be mbedtls or openssl" ;; esac

# Descriptors. The soft limit goes up to the hard one for every process started here; each
# process keeps 1000 spare descriptors (listeners, logs, the probe's sessions, jabberd2's own).
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] || hard=1048576
ulimit -n "$hard"
cap=$(((hard - 1000) / 2))
[ "$cap" -ge 1 ] || die "ulimit -Hn is $hard: too low"
NI=$(((SESSIONS + cap - 1) / cap))
if [ -n "${XTP_BENCH_INSTANCES:-}" ]; then
    case "$XTP_BENCH_INSTANCES" in '' | *[!0-9]*) die "XTP_BENCH_INSTANCES must be a whole number" ;; esac
    [ "$XTP_BENCH_INSTANCES" -ge "$NI" ] ||
        die "XTP_BENCH_INSTANCES=$XTP_BENCH_INSTANCES: $SESSIONS sessions need at least $NI under ulimit -Hn $hard"
    NI=$XTP_BENCH_INSTANCES
fi
[ "$NI" -le 16 ] || die "$NI instances: at most 16 (ports BASE+1 to BASE+32)"
[ "$SESSIONS" -ge "$NI" ] || die "fewer sessions than instances"
# Each load process's and probe's share; the first ones take the remainder.
share() { echo $((SESSIONS / NI + ($1 < SESSIONS % NI ? 1 : 0))); }
PROBE_N=$(((PROBE_RATE * PROBE_SECS + NI - 1) / NI)) # sessions per probe process
RAMP_S=$(((SESSIONS + ARRIVAL - 1) / ARRIVAL))
HOLD=$((PROBE_SECS + 45)) # from each load's last session up: settle, upkeep, probe, slack
LIMIT=$((RAMP_S * 2 + 4 * PROBE_SECS + 300))             # the watchdog
[ "$LIMIT" -le 900 ] || die "the run could take $LIMIT s: raise XTP_BENCH_ARRIVAL or lower SESSIONS (15 minutes at most)"

read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
{ [ "$BASE" -ge 1024 ] && [ $((BASE + 2 * NI)) -le 65535 ]; } || die "XTP_BENCH_PORT_BASE out of range: $BASE"
[ $((BASE + 2 * NI)) -lt "$eph_lo" ] || [ $((BASE + 1)) -gt "$eph_hi" ] ||
    die "ports $((BASE + 1))-$((BASE + 2 * NI)) overlap the ephemeral range $eph_lo-$eph_hi: set XTP_BENCH_PORT_BASE"
# Ephemeral ports: every (source address, destination address and port) has eph_hi - eph_lo + 1
# of them, and each destination here gets SESSIONS/I connections plus the probes.
[ $(($(share 0) + PROBE_N * 3)) -lt $((eph_hi - eph_lo)) ] ||
    die "$(share 0) sessions per instance do not fit the ephemeral range $eph_lo-$eph_hi: set XTP_BENCH_INSTANCES"
c2s_port() { echo $((BASE + 2 * $1 + 1)); }
proxy_port() { echo $((BASE + 2 * $1 + 2)); }
for ((i = 0; i < NI; i++)); do
    for p in "$(c2s_port "$i")" "$(proxy_port "$i")"; do
        [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || die "port 127.0.0.1:$p is busy (set XTP_BENCH_PORT_BASE)"
    done
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xtp-scale.XXXXXX")
J=$WORK/jabberd2
RC=0
WATCHDOG_PID=
declare -a PROXY_PIDS=() C2S_PIDS=() IDLE_PIDS=() PROBE_PIDS=()

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    set +e
    for pid in "${PROBE_PIDS[@]}" "${IDLE_PIDS[@]}" "${PROXY_PIDS[@]}"; do stop_pid "$pid"; done
    "$SRC/scripts/jabberd2-local.sh" stop "$J" >/dev/null 2>&1
    stop_pid "$WATCHDOG_PID"
    if [ "$rc" -eq 0 ] && [ "${XTP_BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        printf 'scale.sh: logs kept in %s\n' "$WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The watchdog: SIGTERM to this script after LIMIT seconds (the trap then stops everything).
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep "$LIMIT" &
    sp=$!
    wait "$sp" && printf 'scale.sh: watchdog: %s s are up, stopping\n' "$LIMIT" >&2 && kill -TERM $$
) &
WATCHDOG_PID=$!

HZ=$(getconf CLK_TCK)
T_START=$(date +%s)
now_s() { date +%s.%N; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# cpu_ticks PID...: utime + stime of the live ones among them (all threads), in clock ticks
# (proc(5) fields 14 and 15; the command name is cut off first since it may hold spaces).
cpu_ticks() {
    local pid stat sum=0
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        sum=$((sum + $(awk '{ print $12 + $13 }' <<<"$stat")))
    done
    echo "$sum"
}
# machine_ticks: the busy time of every CPU (user, nice, system, irq, softirq, steal).
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
# sum_result KEY FILE...: the sum of KEY over the files.
sum_result() {
    local k=$1 f s=0
    shift
    for f in "$@"; do s=$(awk -v a="$s" -v b="$(result "$k" "$f")" 'BEGIN { print a + b }'); done
    echo "$s"
}
# pcts FILE...: "p50 p90 p99 max n" of the third column (ms) of latency logs, nearest rank.
pcts() {
    cat "$@" | awk '{ print $3 }' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "- - - - 0"; exit }
        split("50 90 99", q, " ")
        for (i = 1; i <= 3; i++) { r = int(q[i] * NR / 100); if (r < q[i] * NR / 100) r++; printf "%.1f ", v[r] }
        printf "%.1f %d\n", v[NR], NR }'
}
fld() { awk -v i="$1" '{ print $i }' <<<"$2"; }
div() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (b > 0) printf f, a / b; else printf "-" }'; }

# wait_listen PORT PID: until PID listens on 127.0.0.1:PORT (10 s at most).
wait_listen() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$pid," && return 0
        sleep 0.1
    done
    return 1
}

# ---- jabberd2: one router, one sm, NI c2s processes ---------------------------------------
say "$SESSIONS sessions over $NI instances (ulimit -Hn $hard: at most $cap sessions per proxy); work folder $WORK"
mkdir -p "$WORK/etc" "$WORK/runs"
cp -r "${JABBERD2_ETC:-/etc/jabberd2}/." "$WORK/etc/"
# c2s refuses descriptors past <max_fds> (1024 in Debian's c2s.xml).
sed -i "s#<max_fds>[0-9]*</max_fds>#<max_fds>$(($(share 0) + 1000))</max_fds>#" "$WORK/etc/c2s.xml"
JABBERD2_ETC=$WORK/etc JABBERD2_USERS="user0:secret" \
    "$SRC/scripts/jabberd2-local.sh" start "$J" "$DOMAIN" "$(c2s_port 0)" >/dev/null ||
    die "jabberd2 did not start"
jpid() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$J/pids"; }
JB_PIDS=("$(jpid router)" "$(jpid sm)")
C2S_PIDS=("$(jpid c2s)")
# c2s 1 to NI-1: jabberd2-local's patched c2s.xml with its own component id, pidfile and port,
# recorded in $J/pids so that jabberd2-local.sh stop ends them too.
for ((i = 1; i < NI; i++)); do
    python3 - "$J" "$i" "$(c2s_port "$i")" <<'EOF'
import sys
import xml.etree.ElementTree as ET

d, i, port = sys.argv[1:4]
tree = ET.parse(f"{d}/c2s.xml")
root = tree.getroot()
root.find("id").text = f"c2s-{i}"
root.find("pidfile").text = f"{d}/c2s-{i}.pid"
root.find("local").find("port").text = port
tree.write(f"{d}/c2s-{i}.xml", encoding="utf-8")
EOF
    /usr/sbin/jabberd2-c2s -c "$J/c2s-$i.xml" </dev/null >>"$J/c2s-$i.log" 2>&1 &
    pid=$!
    printf 'c2s-%s %s\n' "$i" "$pid" >>"$J/pids"
    C2S_PIDS+=("$pid")
    wait_listen "$(c2s_port "$i")" "$pid" || die "jabberd2-c2s-$i did not listen (see $J/c2s-$i.log)"
done
# Listening comes before the router bind: wait until a stream gets its features.
for ((i = 0; i < NI; i++)); do
    ok=0
    for ((t = 0; t < 50; t++)); do
        if "$LOAD" --mode plain --port "$(c2s_port "$i")" -n 1 --timeout 2 >/dev/null 2>&1; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ "$ok" = 1 ] || die "jabberd2 c2s $i does not answer on $(c2s_port "$i") (see $J)"
done

# ---- the proxies ---------------------------------------------------------------------------
for ((i = 0; i < NI; i++)); do
    tls=direct
    [ "$MODE" = starttls ] && tls=starttls
    cat >"$WORK/proxy-$i.yaml" <<EOF
log: { level: info }
tls: { min_version: "1.2" }
domains:
  $DOMAIN:
    cert: $CERTS/$DOMAIN.crt
    key: $CERTS/$DOMAIN.key
    backend: { c2s: "127.0.0.1:$(c2s_port "$i")" }
listeners:
  - { name: c2s-$i, listen: "127.0.0.1:$(proxy_port "$i")", kind: c2s, tls: $tls }
limits: { handshake_timeout: 10s, max_connections: $(($(share "$i") + 1000)) }
EOF
    "$PROXY" -c "$WORK/proxy-$i.yaml" </dev/null 2>>"$WORK/proxy-$i.log" &
    PROXY_PIDS+=("$!")
    wait_listen "$(proxy_port "$i")" "$!" || die "proxy $i does not listen (see $WORK/proxy-$i.log)"
done
ALL_PIDS=("${PROXY_PIDS[@]}" "${C2S_PIDS[@]}" "${JB_PIDS[@]}")

tls_args=(--domain "$DOMAIN" --mode "$MODE" --tls-lib "$TLS_LIB" --tls 1.3)
PROBE_PER=$(awk -v r="$PROBE_RATE" -v n="$NI" 'BEGIN { printf "%.3f", r / n }')
RAMP_PER=$(awk -v r="$ARRIVAL" -v n="$NI" 'BEGIN { printf "%.3f", r / n }')

# probe NAME: PROBE_N sessions per instance at PROBE_RATE/NI per second each, all instances at
# once. Writes WORK/runs/NAME.{i.out,i.err,i.lat} and WORK/runs/NAME.{cpu,wall,other}: the
# proxies' CPU ticks, the wall time, the share of a core used by other work on the machine.
probe() {
    local name=$1 i rc p0 m0 l0 w0 p1 m1 l1 w pcpu
    say "probe $name: $((PROBE_N * NI)) sessions at $PROBE_RATE/s"
    p0=$(cpu_ticks "${ALL_PIDS[@]}")
    l0=$(cpu_ticks "${IDLE_PIDS[@]}")
    m0=$(machine_ticks)
    w0=$(now_s)
    PROBE_PIDS=()
    for ((i = 0; i < NI; i++)); do
        "$LOAD" "${tls_args[@]}" --port "$(proxy_port "$i")" -n "$PROBE_N" -c 200 \
            --arrival-rate "$PROBE_PER" --latency-log "$WORK/runs/$name.$i.lat" \
            --timeout $((PROBE_SECS + 30)) >"$WORK/runs/$name.$i.out" 2>"$WORK/runs/$name.$i.err" &
        PROBE_PIDS+=("$!")
    done
    for ((i = 0; i < NI; i++)); do
        rc=0
        wait "${PROBE_PIDS[$i]}" || rc=$?
        if [ "$rc" -ne 0 ]; then
            say "probe $name.$i exited with $rc:"
            tail -n 5 "$WORK/runs/$name.$i.err" >&2
            RC=1
        fi
    done
    PROBE_PIDS=()
    p1=$(cpu_ticks "${ALL_PIDS[@]}")
    l1=$(cpu_ticks "${IDLE_PIDS[@]}")
    m1=$(machine_ticks)
    w=$(awk -v a="$w0" -v b="$(now_s)" 'BEGIN { print b - a }')
    pcpu=$(cpu_ticks "${PROXY_PIDS[@]}")
    echo "$pcpu" >"$WORK/runs/$name.pcpu1"
    echo "$w" >"$WORK/runs/$name.wall"
    # Other work: the machine's busy ticks minus ours (servers, idle loads, the probes' own
    # CPU from their RESULT lines), as a share of one core.
    awk -v m=$((m1 - m0)) -v s=$((p1 - p0 + l1 - l0)) -v c="$(sum_result cpu_s "$WORK/runs/$name".*.out)" \
        -v hz="$HZ" -v w="$w" 'BEGIN { o = (m - s - c * hz) / hz / w * 100; printf "%.0f\n", o < 0 ? 0 : o }' \
        >"$WORK/runs/$name.other"
}

# proxy CPU over a probe: recorded as ticks before (pcpu0) and after (pcpu1).
probe_measured() {
    local name=$1 c0
    c0=$(cpu_ticks "${PROXY_PIDS[@]}")
    echo "$c0" >"$WORK/runs/$name.pcpu0"
    probe "$name"
    loadavg >"$WORK/runs/$name.load"
}

LOAD_START=$(loadavg)

# ---- 1. the quiet probe ---------------------------------------------------------------------
probe_measured quiet1

# ---- 2. the ramp ---------------------------------------------------------------------------
say "ramp: $SESSIONS sessions at $ARRIVAL/s ($NI x $RAMP_PER/s), held idle"
R0=$(rss_kb "${PROXY_PIDS[@]}")
C0=$(rss_kb "${C2S_PIDS[@]}")
pc0=$(cpu_ticks "${PROXY_PIDS[@]}")
jc0=$(cpu_ticks "${C2S_PIDS[@]}" "${JB_PIDS[@]}")
m0=$(machine_ticks)
w0=$(now_s)
for ((i = 0; i < NI; i++)); do
    n=$(share "$i")
    "$LOAD" "${tls_args[@]}" --port "$(proxy_port "$i")" -n "$n" -c 1000 --arrival-rate "$RAMP_PER" \
        --hold "$HOLD" --ready-file "$WORK/runs/ready.$i" --latency-log "$WORK/runs/ramp.$i.lat" \
        --timeout $((RAMP_S * 2 + HOLD + 60)) >"$WORK/runs/ramp.$i.out" 2>"$WORK/runs/ramp.$i.err" &
    IDLE_PIDS+=("$!")
done
# Until every load process has its sessions up (twice the ramp's time plus a minute at most).
ready=0
for ((t = 0; t < (RAMP_S * 2 + 60) * 10; t++)); do
    ready=0
    for ((i = 0; i < NI; i++)); do
        [ -f "$WORK/runs/ready.$i" ] && ready=$((ready + 1))
    done
    [ "$ready" -eq "$NI" ] && break
    dead=0
    for pid in "${IDLE_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || dead=1; done
    [ "$dead" = 0 ] || break
    sleep 0.1
done
RAMP_WALL=$(awk -v a="$w0" -v b="$(now_s)" 'BEGIN { print b - a }')
pc1=$(cpu_ticks "${PROXY_PIDS[@]}")
jc1=$(cpu_ticks "${C2S_PIDS[@]}" "${JB_PIDS[@]}")
lc1=$(cpu_ticks "${IDLE_PIDS[@]}")
m1=$(machine_ticks)
LOAD_RAMP=$(loadavg)
if [ "$ready" -ne "$NI" ]; then
    say "only $ready of $NI load processes got all their sessions up"
    for ((i = 0; i < NI; i++)); do tail -n 3 "$WORK/runs/ramp.$i.err" >&2; done
    RC=1
fi
# Every load process's hold began when its own last session came up: the first one's hold ends
# first, and the idle probe must be over by then.
hold_end=$(($(date +%s) + HOLD))
for ((i = 0; i < NI; i++)); do
    [ -f "$WORK/runs/ready.$i" ] || continue
    e=$(($(stat -c %Y "$WORK/runs/ready.$i") + HOLD))
    [ "$e" -ge "$hold_end" ] || hold_end=$e
done
sleep 2 # the last features settle
R1=$(rss_kb "${PROXY_PIDS[@]}")
C1=$(rss_kb "${C2S_PIDS[@]}")
declare -a RSS_EACH=()
for pid in "${PROXY_PIDS[@]}"; do RSS_EACH+=("$(rss_kb "$pid")"); done
# Descriptors in use (the most of any one process of each kind), against the hard limit.
max_fds() {
    local pid m=0 n
    for pid in "$@"; do
        n=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        [ "$n" -le "$m" ] || m=$n
    done
    echo "$m"
}
FD_P=$(max_fds "${PROXY_PIDS[@]}")
FD_C=$(max_fds "${C2S_PIDS[@]}")
FD_L=$(max_fds "${IDLE_PIDS[@]}")
# Upkeep: what the held sessions cost while nothing happens on them, over UPKEEP_S seconds.
UPKEEP_S=5
u0=$(cpu_ticks "${PROXY_PIDS[@]}")
uj0=$(cpu_ticks "${C2S_PIDS[@]}" "${JB_PIDS[@]}")
ul0=$(cpu_ticks "${IDLE_PIDS[@]}")
um0=$(machine_ticks)
uw0=$(now_s)
sleep "$UPKEEP_S"
UP_W=$(awk -v a="$uw0" -v b="$(now_s)" 'BEGIN { print b - a }')
UP_P=$(($(cpu_ticks "${PROXY_PIDS[@]}") - u0))
UP_J=$(($(cpu_ticks "${C2S_PIDS[@]}" "${JB_PIDS[@]}") - uj0))
UP_L=$(($(cpu_ticks "${IDLE_PIDS[@]}") - ul0))
UP_M=$(($(machine_ticks) - um0))

# ---- 3. the probe while the sessions sit idle -------------------------------------------------
probe_measured idle
probe_end=$(date +%s)
# Still open? Established connections to the proxies' listeners (the probes have closed theirs).
EST=0
for ((i = 0; i < NI; i++)); do
    EST=$((EST + $(ss -Htn state established "sport = :$(proxy_port "$i")" 2>/dev/null | wc -l)))
done
if [ "$probe_end" -gt "$hold_end" ]; then
    say "the idle probe ended after the first hold ($probe_end > $hold_end): sessions were closing"
    RC=1
fi

# ---- 4. release ----------------------------------------------------------------------------
say "release: the load processes end their holds"
for ((i = 0; i < NI; i++)); do
    rc=0
    wait "${IDLE_PIDS[$i]}" || rc=$?
    if [ "$rc" -ne 0 ]; then
        say "ramp.$i exited with $rc:"
        tail -n 5 "$WORK/runs/ramp.$i.err" >&2
        RC=1
    fi
done
IDLE_PIDS=()
sleep 3 # the backends' closes

# ---- 5. the quiet probe again ---------------------------------------------------------------
probe_measured quiet2
T_END=$(date +%s)

# ---- the report ----------------------------------------------------------------------------
R=$WORK/runs
UP=$(sum_result up "$R"/ramp.*.out)
ERRS=$(sum_result errors "$R"/ramp.*.out)
ramp_p=$(pcts "$R"/ramp.*.lat)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
ramp_w=$(awk -v a=$((m1 - m0 - (pc1 - pc0) - (jc1 - jc0) - lc1)) -v hz="$HZ" -v w="$RAMP_WALL" \
    'BEGIN { o = a / hz / w * 100; printf "%.0f", o < 0 ? 0 : o }')
# busy TICKS SECONDS [FORMAT]: CPU time over wall time, % of one core.
busy() { awk -v d="$1" -v hz="$HZ" -v w="$2" -v f="${3:-%.0f}" 'BEGIN { printf f, d / hz / w * 100 }'; }

printf '\nxmpp-tls-proxy scale benchmark, %s (bench/scale.sh, %s sessions)\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SESSIONS"
printf 'machine: %s vCPU (%s), %s %s, %s MB RAM; %s; load generators and servers share the machine\n' \
    "$(nproc)" "$cpu_model" "$(uname -s)" "$(uname -r)" \
    "$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1024 }' /proc/meminfo)" "$("$PROXY" --version | sed -n 2p)"
printf 'ulimit -Hn %s: at most %s sessions per proxy (2 descriptors each, 1000 spare), so %s instance(s):\n' \
    "$hard" "$cap" "$NI"
printf '  proxy i (%s, 127.0.0.1:%s..%s) -> jabberd2 c2s i (127.0.0.1:%s..%s; one router, one sm);\n' \
    "$MODE" "$(proxy_port 0)" "$(proxy_port $((NI - 1)))" "$(c2s_port 0)" "$(c2s_port $((NI - 1)))"
printf '  load i: xtp-load --tls-lib %s --tls 1.3 (x25519), %s sessions, not logged in\n' "$TLS_LIB" "$(share 0)"
printf 'load average: start %s; after the ramp %s; after the idle probe %s; end %s; %d s in all\n\n' \
    "$LOAD_START" "$LOAD_RAMP" "$(cat "$R/idle.load")" "$(loadavg)" "$((T_END - T_START))"

printf 'ramp: %s sessions at %s/s (open loop), %s up in %.1f s, errors %s\n' "$SESSIONS" "$ARRIVAL" \
    "$UP" "$RAMP_WALL" "$ERRS"
printf '  TLS handshake during the ramp: p50 %s  p90 %s  p99 %s  max %s ms (%s handshakes)\n' \
    "$(fld 1 "$ramp_p")" "$(fld 2 "$ramp_p")" "$(fld 3 "$ramp_p")" "$(fld 4 "$ramp_p")" "$(fld 5 "$ramp_p")"
printf '  CPU over the ramp: proxies %s us per session (%s%% of a core); jabberd2 %s us per session (%s%%);\n' \
    "$(div $(((pc1 - pc0) * 1000000 / HZ)) "$UP" '%.0f')" "$(busy $((pc1 - pc0)) "$RAMP_WALL")" \
    "$(div $(((jc1 - jc0) * 1000000 / HZ)) "$UP" '%.0f')" "$(busy $((jc1 - jc0)) "$RAMP_WALL")"
printf '    load generators %s us per session (%s%%); other work on the machine %s%% of a core\n' \
    "$(div $((lc1 * 1000000 / HZ)) "$UP" '%.0f')" "$(busy "$lc1" "$RAMP_WALL")" "$ramp_w"
printf '  VmRSS while held: proxies %s MB -> %s MB = %s KB per session (each: %s MB);\n' \
    "$((R0 / 1024))" "$((R1 / 1024))" "$(div $((R1 - R0)) "$UP" '%.1f')" \
    "$(for r in "${RSS_EACH[@]}"; do printf '%s ' $((r / 1024)); done | sed 's/ $//; s/ /, /g')"
printf '    jabberd2 c2s %s MB -> %s MB = %s KB per session\n' "$((C0 / 1024))" "$((C1 / 1024))" \
    "$(div $((C1 - C0)) "$UP" '%.1f')"
printf '  descriptors while held, the most in one process: proxy %s, jabberd2 c2s %s, xtp-load %s (ulimit -Hn %s)\n' \
    "$FD_P" "$FD_C" "$FD_L" "$hard"
printf '  upkeep while held (%.1f s, nothing sent): proxies %s%% of a core, jabberd2 %s%%, load generators %s%%; other work %s%%\n' \
    "$UP_W" "$(busy "$UP_P" "$UP_W" %.1f)" "$(busy "$UP_J" "$UP_W" %.1f)" "$(busy "$UP_L" "$UP_W" %.1f)" \
    "$(busy $((UP_M - UP_P - UP_J - UP_L)) "$UP_W")"
printf '  established connections to the proxies after the idle probe: %s (of %s held)\n\n' "$EST" "$UP"

printf 'probe: %s new sessions per case at %s/s for %s s (%s x %s/s, open loop), each ends its stream once set up\n' \
    "$((PROBE_N * NI))" "$PROBE_RATE" "$PROBE_SECS" "$NI" "$PROBE_PER"
hdr='%-34s %9s %6s %8s %8s %8s %8s %11s %11s %7s %16s\n'
printf "$hdr" case up errors p50 p90 p99 max "setup p99" "proxy CPU" other "load average"
printf "$hdr" "" "" "" "ms" "ms" "ms" "ms" "ms (worst)" "us/session" "work" ""
for c in quiet1 idle quiet2; do
    case "$c" in
    quiet1) label="quiet, before the ramp" ;;
    idle) label="$UP idle sessions held" ;;
    quiet2) label="quiet, after the release" ;;
    esac
    p=$(pcts "$R/$c".*.lat)
    up=$(sum_result up "$R/$c".*.out)
    sp=$(for f in "$R/$c".*.out; do result setup_p99_us "$f"; done | sort -g | tail -n 1)
    pc=$(($(cat "$R/$c.pcpu1") - $(cat "$R/$c.pcpu0")))
    printf "$hdr" "$label" "$up/$((PROBE_N * NI))" "$(sum_result errors "$R/$c".*.out)" \
        "$(fld 1 "$p")" "$(fld 2 "$p")" "$(fld 3 "$p")" "$(fld 4 "$p")" \
        "$(div "${sp:-0}" 1000 '%.1f')" "$(div $((pc * 1000000 / HZ)) "$up" '%.0f')" \
        "$(cat "$R/$c.other")%" "$(cat "$R/$c.load")"
done
q1=$(pcts "$R"/quiet1.*.lat)
q2=$(pcts "$R"/quiet2.*.lat)
id=$(pcts "$R"/idle.*.lat)
ratio() { awk -v a="$(fld "$1" "$id")" -v b="$(fld "$1" "$q1")" -v c="$(fld "$1" "$q2")" \
    'BEGIN { m = (b + c) / 2; if (m > 0) printf "%.2fx", a / m; else printf "-" }'; }
printf '  idle / quiet (mean of the two quiet cases): p50 %s, p90 %s, p99 %s\n' "$(ratio 1)" "$(ratio 2)" "$(ratio 3)"
p99=$(fld 3 "$id")
verdict=$(awk -v p="$p99" -v up="$UP" -v n="$SESSIONS" -v est="$EST" 'BEGIN {
    if (up < n || est < n) print "not met: not every session was up and held"
    else if (p <= 50) print "met"; else print "not met" }')
printf 'target (issue 5): %s sessions held and the probe p99 <= 50 ms: p99 %s ms, %s\n' \
    "$SESSIONS" "$p99" "$verdict"
cat <<EOF

  TLS handshake: client side, first byte out to Finished, from every probe process's
    --latency-log (merged; nearest rank). setup p99: connect to stream features, the worst of
    the probe processes' own p99. proxy CPU: utime+stime of all proxies over the case divided by
    its sessions (with sessions held, their upkeep too). other work: the machine's busy time
    (/proc/stat) that was neither the proxies', jabberd2's nor the load generators', as a share
    of one core: other people's jobs on a shared VM.
EOF
[ "$RC" -eq 0 ] || say "some runs reported errors (see above); numbers may be off"
exit "$RC"
