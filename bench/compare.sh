#!/bin/bash
# compare.sh: the proxy side by side with the TLS terminators operators use today, on the same
# workload, the same jabberd2 and the same certificate (tests/certs example.test, ECDSA P-256):
#
#   proxy      xmpp-tls-proxy, Direct TLS listener            -> jabberd2 c2s (plaintext)
#   stunnel    stunnel4, Direct TLS                           -> jabberd2 c2s (plaintext)
#   haproxy    HAProxy in TCP mode, Direct TLS, one thread    -> jabberd2 c2s (plaintext)
#   jabberd2   jabberd2's own TLS (OpenSSL): STARTTLS with <id pemfile=...>, the STARTTLS baseline
#   plain      plaintext straight to jabberd2: the floor of the XMPP work
# and, only when named in XTP_BENCH_TARGETS: proxy-starttls (the proxy's STARTTLS listener) and
# jabberd2-direct (jabberd2's legacy <ssl-port>, Direct TLS).
#
# For each target, XTP_BENCH_REPS times (rounds interleave the targets, so that the drift of a
# shared VM spreads over all of them), on freshly started target processes:
#   idle     N sessions (TLS + stream setup) opened at a fixed arrival rate (open loop), held
#            idle: the TLS handshake latency percentiles at that rate, and VmRSS per session
#            (the target's VmRSS while they are held minus before, divided by N);
#   full     K sessions, full TLS 1.3 handshakes (x25519), concurrency C, each ends its stream
#            once set up: sessions/s, and server CPU per session from /proc/PID/stat (utime +
#            stime, fields 14 and 15, every process of the target, all threads) before/after;
#   resumed  the same with TLS 1.3 ticket resumption (psk_dhe_ke: all clients offer it).
# Each round also measures the crypto floor (bench/crypto-floor): mbedTLS's, which the proxy
# pays, and OpenSSL's, which stunnel, HAProxy and jabberd2 pay. The load generator is
# bench/xtp-load with OpenSSL as its TLS library when built with it (a third of mbedTLS's client
# CPU); its own CPU is printed next to the server's.
#
#   bench/compare.sh BUILD_DIR [--quick]
#
# --quick: small counts, under 3 minutes on 2 vCPUs (what `make bench` can run). Without it: K
# = 3000 and N = 10,000 idle sessions, or as many as RLIMIT_NOFILE allows (the proxy holds two
# descriptors per session); about 15 minutes.
#
# Environment (defaults quick/full): XTP_BENCH_REPS [3], XTP_BENCH_HANDSHAKES K [500/3000],
# XTP_BENCH_CONCURRENCY C [32], XTP_BENCH_IDLE N [300/10000], XTP_BENCH_ARRIVAL sessions/s of
# the idle ramp [200], XTP_BENCH_TARGETS [proxy stunnel haproxy jabberd2 plain],
# XTP_BENCH_TLS_LIB [openssl if built in, else mbedtls], XTP_BENCH_PORT_BASE [23400]: ports
# BASE+1 to BASE+7 on 127.0.0.1, below the ephemeral range (the load's own ports would take
# them between rounds); XTP_BENCH_PERF=1: `perf record` on each TLS target in the
# first round's full case, and the split of the proxy's CPU (bench/README.md);
# XTP_BENCH_KEEP=1 keeps the work folder.
#
# Needs BUILD_DIR/xmpp-tls-proxy, BUILD_DIR/bench/{xtp-load,crypto-floor}, jabberd2 2.7,
# sqlite3, python3, stunnel4 and haproxy (scripts/deps.sh bench). Their system services are
# never touched: private instances run from configs in a temporary folder, on loopback only.
# Every process started here is stopped on exit (trap). Exit status: 0 when every run was
# clean, 1 when a run reported errors (the table still prints, marked), 2 on bad usage or when
# a server could not start.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
DOMAIN=example.test
CERTS=$SRC/tests/certs

die() {
    printf 'compare.sh: %s\n' "$*" >&2
    exit 2
}
say() { printf 'compare.sh: %s\n' "$*" >&2; }

QUICK=0
BUILD_ARG=
for a in "$@"; do
    case "$a" in
    --quick) QUICK=1 ;;
    -*) die "usage: bench/compare.sh BUILD_DIR [--quick]" ;;
    *)
        [ -z "$BUILD_ARG" ] || die "usage: bench/compare.sh BUILD_DIR [--quick]"
        BUILD_ARG=$a
        ;;
    esac
done
[ -n "$BUILD_ARG" ] || die "usage: bench/compare.sh BUILD_DIR [--quick]"
[ -d "$BUILD_ARG" ] || die "no build folder $BUILD_ARG"
BUILD=$(cd "$BUILD_ARG" && pwd)
PROXY=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
LOAD=$BUILD/bench/xtp-load
FLOOR=$BUILD/bench/crypto-floor
for f in "$PROXY" "$LOAD" "$FLOOR"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD)"
done
for c in stunnel4 haproxy sqlite3 python3 ss; do
    command -v "$c" >/dev/null || die "$c not found (scripts/deps.sh bench)"
done
[ -x /usr/sbin/jabberd2-c2s ] || die "jabberd2 not found (scripts/deps.sh bench)"

if [ "$QUICK" = 1 ]; then
    def_k=500 def_idle=300 hold=1
else
    def_k=3000 def_idle=10000 hold=2
fi
REPS=${XTP_BENCH_REPS:-3}
# The proxy trims a session after 5 s without input (CONN_IDLE_TRIM_MS, swept every 2 s):
# its idle RSS is read again this long after the ramp. The other targets have no such step;
# the full run settles them as well, --quick only the proxy (3 minutes).
SETTLE=${XTP_BENCH_SETTLE:-8}
K=${XTP_BENCH_HANDSHAKES:-$def_k}
CONC=${XTP_BENCH_CONCURRENCY:-32}
ARRIVAL=${XTP_BENCH_ARRIVAL:-200}
BASE=${XTP_BENCH_PORT_BASE:-23400}
TARGETS=${XTP_BENCH_TARGETS:-proxy stunnel haproxy jabberd2 plain}
for v in REPS K CONC ARRIVAL BASE; do
    case "${!v}" in
    '' | *[!0-9]*) die "$v must be a whole number, not '${!v}'" ;;
    esac
done
if [ "$REPS" -lt 1 ] || [ "$K" -lt 1 ] || [ "$CONC" -lt 1 ] || [ "$ARRIVAL" -lt 1 ]; then
    die "XTP_BENCH_REPS, _HANDSHAKES, _CONCURRENCY and _ARRIVAL must be at least 1"
fi
{ [ "$BASE" -ge 1024 ] && [ "$BASE" -le 65000 ]; } || die "XTP_BENCH_PORT_BASE out of range: $BASE"
for t in $TARGETS; do
    case "$t" in
    proxy | proxy-starttls | stunnel | haproxy | jabberd2 | jabberd2-direct | plain) ;;
    *) die "unknown target '$t' in XTP_BENCH_TARGETS" ;;
    esac
done
case " $TARGETS " in *" proxy "*) ;; *) die "XTP_BENCH_TARGETS must include proxy (the ratios are to it)" ;; esac

TLS_LIB=${XTP_BENCH_TLS_LIB:-}
if [ -z "$TLS_LIB" ]; then
    TLS_LIB=mbedtls
    "$LOAD" --help | grep -q 'or openssl' && TLS_LIB=openssl
fi
case "$TLS_LIB" in mbedtls | openssl) ;; *) die "XTP_BENCH_TLS_LIB must be mbedtls or openssl" ;; esac
HAVE_OSSL_FLOOR=0
"$FLOOR" --help | grep -q 'or openssl' && HAVE_OSSL_FLOOR=1

# Descriptors: the proxy, stunnel and HAProxy hold two per session, jabberd2's c2s one. The hard
# limit caps the idle sessions (raising it needs CAP_SYS_RESOURCE, which a container may lack).
hard=$(ulimit -Hn)
[ "$hard" != unlimited ] || hard=1048576
ulimit -n "$hard"
max_idle=$(((hard - 200) / 2))
if [ -n "${XTP_BENCH_IDLE:-}" ]; then
    IDLE=$XTP_BENCH_IDLE
    case "$IDLE" in '' | *[!0-9]*) die "XTP_BENCH_IDLE must be a whole number" ;; esac
    [ "$IDLE" -le "$max_idle" ] || die "ulimit -Hn is $hard: at most $max_idle idle sessions"
    IDLE_NOTE=""
else
    IDLE=$def_idle
    IDLE_NOTE=""
    if [ "$IDLE" -gt "$max_idle" ]; then
        IDLE_NOTE="(${IDLE} wanted; ulimit -Hn $hard allows $max_idle)"
        IDLE=$max_idle
    fi
fi
[ "$IDLE" -ge 1 ] || die "XTP_BENCH_IDLE must be at least 1"

C2S_PORT=$((BASE + 1))     # jabberd2 c2s, plaintext
J_TLS_PORT=$((BASE + 2))   # jabberd2 c2s-tls, STARTTLS
J_SSL_PORT=$((BASE + 3))   # jabberd2 c2s-tls, <ssl-port> (Direct TLS)
PROXY_PORT=$((BASE + 4))   # the proxy, Direct TLS
STUNNEL_PORT=$((BASE + 5)) # stunnel
HAPROXY_PORT=$((BASE + 6)) # HAProxy
PROXY_ST_PORT=$((BASE + 7)) # the proxy, STARTTLS
# Targets restart every round: a listening port inside the ephemeral range could meanwhile be
# the local port of one of the load's connections.
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
[ $((BASE + 7)) -lt "$eph_lo" ] || [ $((BASE + 1)) -gt "$eph_hi" ] ||
    die "ports $((BASE + 1))-$((BASE + 7)) overlap the ephemeral range $eph_lo-$eph_hi: set XTP_BENCH_PORT_BASE"
for p in "$C2S_PORT" "$J_TLS_PORT" "$J_SSL_PORT" "$PROXY_PORT" "$STUNNEL_PORT" "$HAPROXY_PORT" "$PROXY_ST_PORT"; do
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] ||
        die "port 127.0.0.1:$p is busy (set XTP_BENCH_PORT_BASE)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xtp-compare.XXXXXX")
J=$WORK/jabberd2
RC=0
FRONT_PID=
LOAD_PID=
PERF_PID=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_pid "$PERF_PID"
    stop_pid "$LOAD_PID"
    stop_pid "$FRONT_PID"
    "$SRC/scripts/jabberd2-local.sh" stop "$J" >/dev/null 2>&1
    if [ "$rc" -eq 0 ] && [ "${XTP_BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        printf 'compare.sh: logs kept in %s\n' "$WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

HZ=$(getconf CLK_TCK)
T_START=$(date +%s)

# cpu_ticks PID...: utime + stime of the processes (all threads, exited ones included), in clock
# ticks (proc(5) fields 14 and 15; the command name is cut off first since it may hold spaces).
cpu_ticks() {
    local pid stat sum=0
    for pid in "$@"; do
        stat=$(<"/proc/$pid/stat")
        stat=${stat##*) }
        sum=$((sum + $(awk '{ print $12 + $13 }' <<<"$stat")))
    done
    echo "$sum"
}

# machine_ticks: the whole machine's busy time (every CPU, every process, ours and others'),
# in clock ticks, from the cpu line of /proc/stat: user, nice, system, irq, softirq, steal.
machine_ticks() {
    awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

now_s() { date +%s.%N; }

# other_pct DM DT DB DL W: the CPU share (% of one core) of work that is none of ours over W
# seconds: machine ticks DM minus target DT, jabberd2 DB and load generator DL.
other_pct() {
    awk -v m="$1" -v t="$2" -v b="$3" -v l="$4" -v w="$5" -v hz="$HZ" 'BEGIN {
        o = w > 0 ? (m - t - b - l) / hz / w * 100 : 0
        printf "%.0f", o < 0 ? 0 : o }'
}

# put TARGET CASE REP KEY VALUE: one measurement, for the table.
put() { printf '%s %s %s %s %s\n' "$@" >>"$WORK/metrics"; }

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

# ---- jabberd2 ------------------------------------------------------------------------------
say "starting jabberd2 in $WORK"
# c2s refuses descriptors past <max_fds> (1024 in Debian's c2s.xml): a private copy of the
# configuration with room for the idle sessions.
mkdir -p "$WORK/etc"
cp -r "${JABBERD2_ETC:-/etc/jabberd2}/." "$WORK/etc/"
sed -i "s#<max_fds>[0-9]*</max_fds>#<max_fds>$((IDLE + 512))</max_fds>#" "$WORK/etc/c2s.xml"
JABBERD2_ETC=$WORK/etc JABBERD2_USERS="user0:secret" \
    "$SRC/scripts/jabberd2-local.sh" start "$J" "$DOMAIN" "$C2S_PORT" >/dev/null ||
    die "jabberd2 did not start"
jpid() { awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$J/pids"; }
ROUTER_PID=$(jpid router)
SM_PID=$(jpid sm)

# jabberd2's own TLS: a second c2s (component c2s-tls, same router, sm and database) whose
# configuration is jabberd2-local's patched c2s.xml plus a PEM file (certificate, then key) for
# STARTTLS (<id pemfile=...>) and the legacy Direct TLS port (<ssl-port>, <pemfile>).
cat "$CERTS/$DOMAIN.crt" "$CERTS/$DOMAIN.key" >"$WORK/$DOMAIN.pem"
chmod 600 "$WORK/$DOMAIN.pem"
python3 - "$J" "$WORK/$DOMAIN.pem" "$J_TLS_PORT" "$J_SSL_PORT" <<'EOF'
import sys
import xml.etree.ElementTree as ET

d, pem, port, ssl_port = sys.argv[1:5]
tree = ET.parse(f"{d}/c2s.xml")
root = tree.getroot()
root.find("id").text = "c2s-tls"
root.find("pidfile").text = f"{d}/c2s-tls.pid"
local = root.find("local")
local.find("id").set("pemfile", pem)
local.find("port").text = port
ET.SubElement(local, "ssl-port").text = ssl_port
ET.SubElement(local, "pemfile").text = pem
tree.write(f"{d}/c2s-tls.xml", encoding="utf-8")
EOF

# start_c2s NAME PORT: a fresh jabberd2-NAME process (c2s or c2s-tls) from $J/NAME.xml, recorded
# in $J/pids so that jabberd2-local.sh stop ends it too; the previous one is stopped first.
# Fresh, because a process that served sessions before reuses their freed memory, which hides
# the RSS of new ones. Sets C2S_NEW_PID.
start_c2s() {
    local name=$1 port=$2 old i
    old=$(jpid "$name")
    if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
        kill -TERM "$old"
        for ((i = 0; i < 50; i++)); do
            kill -0 "$old" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$old" 2>/dev/null || true
    fi
    /usr/sbin/jabberd2-c2s -c "$J/$name.xml" </dev/null >>"$J/$name.log" 2>&1 &
    C2S_NEW_PID=$!
    printf '%s %s\n' "$name" "$C2S_NEW_PID" >>"$J/pids"
    wait_listen "$port" "$C2S_NEW_PID" || die "jabberd2-$name did not listen on $port (see $J/$name.log)"
    # Listening comes before the router bind: wait until a stream gets its features.
    for ((i = 0; i < 50; i++)); do
        "$LOAD" --mode plain --port "$port" -n 1 --timeout 2 >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "jabberd2-$name does not answer on $port (see $J/$name.log)"
}

# ---- the targets ----------------------------------------------------------------------------
cat >"$WORK/proxy.yaml" <<EOF
log: { level: info }
tls: { min_version: "1.2" }
domains:
  $DOMAIN:
    cert: $CERTS/$DOMAIN.crt
    key: $CERTS/$DOMAIN.key
    backend: { c2s: "127.0.0.1:$C2S_PORT" }
listeners:
  - { name: c2s-direct, listen: "127.0.0.1:$PROXY_PORT", kind: c2s, tls: direct }
  - { name: c2s, listen: "127.0.0.1:$PROXY_ST_PORT", kind: c2s, tls: starttls }
limits: { max_stanza: 256KiB, handshake_timeout: 10s, max_connections: $((IDLE + 100)) }
EOF
# stunnel: one process, a thread per connection (Debian's build); logs at its default level.
cat >"$WORK/stunnel.conf" <<EOF
foreground = yes
pid =
[xmpp-direct]
accept = 127.0.0.1:$STUNNEL_PORT
connect = 127.0.0.1:$C2S_PORT
cert = $CERTS/$DOMAIN.crt
key = $CERTS/$DOMAIN.key
sslVersionMin = TLSv1.2
EOF
# HAProxy: one thread, like the proxy (both could use more). maxconn bounds the descriptors it
# asks for (two per connection), which must fit under the hard limit.
cat >"$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn $((IDLE + 50))
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend xmpp_direct
  bind 127.0.0.1:$HAPROXY_PORT ssl crt $WORK/$DOMAIN.pem alpn xmpp-client
  default_backend jabberd2
backend jabberd2
  server c2s 127.0.0.1:$C2S_PORT
EOF

declare -A T_LABEL T_MODE T_PORT T_OWN
T_LABEL[proxy]="xmpp-tls-proxy, Direct TLS"
T_LABEL[proxy-starttls]="xmpp-tls-proxy, STARTTLS"
T_LABEL[stunnel]="stunnel4 $(stunnel4 -version 2>&1 | sed -n 's/^stunnel \([0-9.]*\) .*/\1/p' | head -n 1), Direct TLS"
T_LABEL[haproxy]="HAProxy $(haproxy -v | sed -n 's/^HAProxy version \([0-9.]*\).*/\1/p'), TCP, Direct TLS"
T_LABEL[jabberd2]="jabberd2's own TLS, STARTTLS"
T_LABEL[jabberd2-direct]="jabberd2's own TLS, <ssl-port>"
T_LABEL[plain]="jabberd2 plaintext (no TLS)"
T_MODE=([proxy]=direct [proxy-starttls]=starttls [stunnel]=direct [haproxy]=direct
    [jabberd2]=starttls [jabberd2-direct]=direct [plain]=plain)
T_PORT=([proxy]=$PROXY_PORT [proxy-starttls]=$PROXY_ST_PORT [stunnel]=$STUNNEL_PORT
    [haproxy]=$HAPROXY_PORT [jabberd2]=$J_TLS_PORT [jabberd2-direct]=$J_SSL_PORT [plain]=$C2S_PORT)
# The crypto floor each target pays: the TLS library it is built on.
T_OWN=([proxy]=mbedtls [proxy-starttls]=mbedtls [stunnel]=openssl [haproxy]=openssl
    [jabberd2]=openssl [jabberd2-direct]=openssl [plain]=none)

# start_target T: fresh processes for target T. Sets TGT_PIDS (what is measured) and BK_PIDS
# (the jabberd2 processes behind it), and FRONT_PID (what stop_target stops, if any).
start_target() {
    local t=$1
    case "$t" in
    jabberd2 | jabberd2-direct)
        start_c2s c2s-tls "$J_TLS_PORT"
        FRONT_PID=$C2S_NEW_PID
        TGT_PIDS=("$C2S_NEW_PID")
        BK_PIDS=("$ROUTER_PID" "$SM_PID")
        return
        ;;
    esac
    start_c2s c2s "$C2S_PORT"
    C2S_PID=$C2S_NEW_PID
    BK_PIDS=("$ROUTER_PID" "$SM_PID" "$C2S_PID")
    case "$t" in
    plain)
        TGT_PIDS=("$C2S_PID")
        BK_PIDS=("$ROUTER_PID" "$SM_PID")
        return
        ;;
    proxy | proxy-starttls)
        "$PROXY" -c "$WORK/proxy.yaml" </dev/null 2>>"$WORK/proxy.log" &
        ;;
    stunnel)
        stunnel4 "$WORK/stunnel.conf" </dev/null >>"$WORK/stunnel.log" 2>&1 &
        ;;
    haproxy)
        haproxy -f "$WORK/haproxy.cfg" -db </dev/null >>"$WORK/haproxy.log" 2>&1 &
        ;;
    esac
    FRONT_PID=$!
    TGT_PIDS=("$FRONT_PID")
    wait_listen "${T_PORT[$t]}" "$FRONT_PID" ||
        die "$t does not listen on ${T_PORT[$t]} (see the logs in $WORK)"
}

stop_target() {
    # jabberd2's c2s-tls stays recorded in $J/pids; stopping it here frees its CPU and memory.
    stop_pid "$FRONT_PID"
    FRONT_PID=
}

# load NAME ARGS...: runs xtp-load, output in WORK/runs/NAME.out; a failing run marks the table.
load() {
    local name=$1 rc=0
    shift
    "$LOAD" --domain "$DOMAIN" "$@" >"$WORK/runs/$name.out" 2>"$WORK/runs/$name.err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        say "run $name exited with $rc:"
        tail -n 5 "$WORK/runs/$name.err" >&2
        RC=1
    fi
    grep -q '^RESULT ' "$WORK/runs/$name.out" || die "run $name printed no result (see $WORK/runs/$name.err)"
}

mkdir -p "$WORK/runs"
: >"$WORK/metrics"
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
tls_args=(--tls-lib "$TLS_LIB" --tls 1.3)

# ---- the rounds -----------------------------------------------------------------------------
read -r -a TLIST <<<"$TARGETS"
NT=${#TLIST[@]}
for ((rep = 1; rep <= REPS; rep++)); do
    say "round $rep of $REPS: crypto floors"
    "$FLOOR" --key "$CERTS/$DOMAIN.key" -n 200 >"$WORK/runs/floor-mbedtls.$rep.out" ||
        die "crypto-floor failed"
    put floor mbedtls "$rep" us "$(result floor_x25519_us "$WORK/runs/floor-mbedtls.$rep.out")"
    if [ "$HAVE_OSSL_FLOOR" = 1 ]; then
        "$FLOOR" --key "$CERTS/$DOMAIN.key" -n 1000 --lib openssl >"$WORK/runs/floor-openssl.$rep.out" ||
            die "crypto-floor --lib openssl failed"
        put floor openssl "$rep" us "$(result floor_x25519_us "$WORK/runs/floor-openssl.$rep.out")"
    fi
    for ((ti = 0; ti < NT; ti++)); do
        t=${TLIST[(ti + rep - 1) % NT]} # each round starts with the next target
        mode=${T_MODE[$t]}
        port=${T_PORT[$t]}
        largs=(--mode "$mode" --port "$port")
        [ "$mode" = plain ] || largs+=("${tls_args[@]}")
        start_target "$t"

        # idle: N sessions at ARRIVAL/s, held; RSS of the fresh target before and while held.
        say "round $rep, $t: $IDLE idle sessions at $ARRIVAL/s"
        name="$t.idle.$rep"
        r0=$(rss_kb "${TGT_PIDS[@]}")
        c0=$(cpu_ticks "${TGT_PIDS[@]}")
        b0=$(cpu_ticks "${BK_PIDS[@]}")
        m0=$(machine_ticks)
        w0=$(now_s)
        rm -f "$WORK/ready"
        secs=$((IDLE / ARRIVAL + 30))
        settle=0
        [ "$t" = proxy ] || [ "$QUICK" = 0 ] && settle=$SETTLE
        "$LOAD" --domain "$DOMAIN" "${largs[@]}" -n "$IDLE" -c 1000 --arrival-rate "$ARRIVAL" \
            --hold "$((hold + settle))" --ready-file "$WORK/ready" \
            --timeout "$((secs + hold + settle + 10))" \
            >"$WORK/runs/$name.out" 2>"$WORK/runs/$name.err" &
        LOAD_PID=$!
        for ((i = 0; i < secs * 10; i++)); do
            [ -f "$WORK/ready" ] && break
            kill -0 "$LOAD_PID" 2>/dev/null || break
            sleep 0.1
        done
        r1=
        if [ -f "$WORK/ready" ]; then
            # The ramp is over: the CPU it took, the target's and the rest of the machine's.
            c1=$(cpu_ticks "${TGT_PIDS[@]}")
            b1=$(cpu_ticks "${BK_PIDS[@]}")
            l1=$(cpu_ticks "$LOAD_PID")
            m1=$(machine_ticks)
            w=$(awk -v a="$w0" -v b="$(now_s)" 'BEGIN { print b - a }')
            sleep 0.5 # the last features and tickets settle
            r1=$(rss_kb "${TGT_PIDS[@]}")
            r2=$r1
            if [ "$settle" -gt 0 ]; then
                sleep "$settle"
                r2=$(rss_kb "${TGT_PIDS[@]}")
            fi
        fi
        lrc=0
        wait "$LOAD_PID" || lrc=$?
        LOAD_PID=
        if [ "$lrc" -ne 0 ] || [ -z "$r1" ]; then
            say "idle run $name failed ($lrc):"
            tail -n 5 "$WORK/runs/$name.err" >&2
            RC=1
        fi
        up=$(result up "$WORK/runs/$name.out")
        if [ -n "$r1" ] && [ "${up:-0}" -gt 0 ]; then
            put "$t" idle "$rep" rss "$(awk -v a="$r0" -v b="$r1" -v n="$up" 'BEGIN { printf "%.1f", (b - a) / n }')"
            put "$t" idle "$rep" rss_idle "$(awk -v a="$r0" -v b="$r2" -v n="$up" 'BEGIN { printf "%.1f", (b - a) / n }')"
            put "$t" idle "$rep" cpu "$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$up" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')"
            put "$t" idle "$rep" sbusy "$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v w="$w" 'BEGIN { printf "%.0f", d / hz / w * 100 }')"
            put "$t" idle "$rep" cbusy "$(awk -v d="$l1" -v hz="$HZ" -v w="$w" 'BEGIN { printf "%.0f", d / hz / w * 100 }')"
            put "$t" idle "$rep" other "$(other_pct $((m1 - m0)) $((c1 - c0)) $((b1 - b0)) "$l1" "$w")"
        fi
        put "$t" idle "$rep" rate "$(result rate "$WORK/runs/$name.out")"
        put "$t" idle "$rep" up "${up:-0}"
        put "$t" idle "$rep" errors "$(result errors "$WORK/runs/$name.out")"
        [ "$mode" = plain ] && lat=setup || lat=tls
        put "$t" idle "$rep" p50 "$(result "${lat}_p50_us" "$WORK/runs/$name.out")"
        put "$t" idle "$rep" p99 "$(result "${lat}_p99_us" "$WORK/runs/$name.out")"
        put "$t" idle "$rep" ver "$(result tls_version "$WORK/runs/$name.out")/$(result cipher "$WORK/runs/$name.out")"

        # full, then resumed: K sessions each, CPU of the target and of jabberd2 behind it.
        cases=(full)
        [ "$mode" = plain ] || cases+=(resumed)
        for c in "${cases[@]}"; do
            say "round $rep, $t: $K sessions, $c"
            name="$t.$c.$rep"
            extra=()
            [ "$c" = resumed ] && extra=(--resume)
            if [ "$rep" = 1 ] && [ "$c" = full ] && [ "$mode" != plain ] &&
                [ "${XTP_BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
                if [ "$t" = proxy ]; then
                    perf record --call-graph dwarf,16384 -F 499 -o "$WORK/perf.$t.data" \
                        -p "${TGT_PIDS[0]}" >/dev/null 2>&1 &
                else
                    perf record -F 499 -o "$WORK/perf.$t.data" -p "${TGT_PIDS[0]}" >/dev/null 2>&1 &
                fi
                PERF_PID=$!
                sleep 0.5
            fi
            c0=$(cpu_ticks "${TGT_PIDS[@]}")
            b0=$(cpu_ticks "${BK_PIDS[@]}")
            m0=$(machine_ticks)
            w0=$(now_s)
            load "$name" "${largs[@]}" -n "$K" -c "$CONC" --timeout 120 "${extra[@]}"
            c1=$(cpu_ticks "${TGT_PIDS[@]}")
            b1=$(cpu_ticks "${BK_PIDS[@]}")
            m1=$(machine_ticks)
            w=$(awk -v a="$w0" -v b="$(now_s)" 'BEGIN { print b - a }')
            if [ -n "$PERF_PID" ]; then
                kill -INT "$PERF_PID" 2>/dev/null
                wait "$PERF_PID" 2>/dev/null || true
                PERF_PID=
            fi
            o=$WORK/runs/$name.out
            up=$(result up "$o")
            n=$up
            [ "$c" = resumed ] && n=$((up + 1)) # the priming session
            if [ "$up" -gt 0 ]; then
                put "$t" "$c" "$rep" cpu "$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')"
                put "$t" "$c" "$rep" bk "$(awk -v d=$((b1 - b0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.0f", d * 1e6 / hz / n }')"
                put "$t" "$c" "$rep" cli "$(awk -v c="$(result cpu_s "$o")" -v n="$up" 'BEGIN { printf "%.0f", c * 1e6 / n }')"
                # busy: CPU time over the setup's wall time (100% = one core saturated).
                put "$t" "$c" "$rep" sbusy "$(awk -v d=$((c1 - c0)) -v hz="$HZ" -v s="$(result setup_s "$o")" 'BEGIN { printf "%.0f", (s > 0 ? d / hz / s * 100 : 0) }')"
                put "$t" "$c" "$rep" cbusy "$(awk -v c="$(result cpu_s "$o")" -v s="$(result setup_s "$o")" 'BEGIN { printf "%.0f", (s > 0 ? c / s * 100 : 0) }')"
                put "$t" "$c" "$rep" other "$(other_pct $((m1 - m0)) $((c1 - c0)) $((b1 - b0)) \
                    "$(awk -v c="$(result cpu_s "$o")" -v hz="$HZ" 'BEGIN { printf "%.0f", c * hz }')" "$w")"
            fi
            put "$t" "$c" "$rep" rate "$(result rate "$o")"
            put "$t" "$c" "$rep" errors "$(result errors "$o")"
            [ "$mode" = plain ] && lat=setup || lat=tls
            put "$t" "$c" "$rep" p50 "$(result "${lat}_p50_us" "$o")"
            put "$t" "$c" "$rep" p99 "$(result "${lat}_p99_us" "$o")"
            if [ "$c" = resumed ]; then
                put "$t" "$c" "$rep" resumed "$(result resumed "$o")/$up"
            fi
        done
        stop_target
    done
done
T_END=$(date +%s)

# ---- the table ------------------------------------------------------------------------------
# stat T CASE KEY: "min median max count" over the rounds (empty when never measured).
stat() {
    awk -v t="$1" -v c="$2" -v k="$3" '$1 == t && $2 == c && $4 == k && $5 != "" { print $5 }' \
        "$WORK/metrics" | sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) exit
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            print v[1], m, v[NR], NR }'
}
# rmed T1 C1 K1 T2 C2 K2: the median over the rounds of the ratio T1/T2 within each round, so
# that the drift of the machine's speed between rounds cancels out ("-" without a pair).
rmed() {
    awk -v t1="$1" -v c1="$2" -v k1="$3" -v t2="$4" -v c2="$5" -v k2="$6" '
        $1 == t1 && $2 == c1 && $4 == k1 && $5 != "" { a[$3] = $5 }
        $1 == t2 && $2 == c2 && $4 == k2 && $5 != "" { b[$3] = $5 }
        END { for (r in a) if ((r in b) && b[r] > 0) print a[r] / b[r] }' "$WORK/metrics" |
        sort -g | awk '{ v[NR] = $1 } END {
            if (NR == 0) { printf "-"; exit }
            printf "%.2fx", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
fld() { awk -v i="$1" '{ print $i }' <<<"$2"; } # fld N "min med max n"
fmt() { [ -n "$2" ] && awk -v f="$1" -v v="$2" 'BEGIN { printf f, v }' || printf -- '-'; }
last() { awk -v t="$1" -v c="$2" -v k="$3" '$1 == t && $2 == c && $4 == k { v = $5 } END { print v }' "$WORK/metrics"; }

fl_m=$(stat floor mbedtls us)
fl_o=$(stat floor openssl us)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)

printf '\nxmpp-tls-proxy side by side, %s (bench/compare.sh%s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
    "$([ "$QUICK" = 1 ] && printf ' --quick')"
printf 'machine: %s vCPU (%s), %s %s; %s, %s; load generator and servers share the machine\n' \
    "$(nproc)" "$cpu_model" "$(uname -s)" "$(uname -r)" "$("$PROXY" --version | sed -n 2p)" \
    "$(openssl version 2>/dev/null | cut -d' ' -f1-2)"
printf 'load average at the start: %s, at the end: %s; %d s in all\n' "$LOAD_AT_START" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$((T_END - T_START))"
printf 'rounds: %d (values: min/median, or median (max) for rates); client: xtp-load --tls-lib %s, TLS 1.3, x25519\n' \
    "$REPS" "$TLS_LIB"
printf 'crypto floor per full handshake (sign + x25519), min/median/max of the rounds: mbedTLS %s/%s/%s us' \
    "$(fld 1 "$fl_m")" "$(fld 2 "$fl_m")" "$(fld 3 "$fl_m")"
[ -n "$fl_o" ] && printf ', OpenSSL %s/%s/%s us' "$(fld 1 "$fl_o")" "$(fld 2 "$fl_o")" "$(fld 3 "$fl_o")"
printf '\n'
printf 'full/resumed: %d sessions per round, %d in setup at once, each ends its stream when set up\n' "$K" "$CONC"
printf 'idle: %d sessions opened at %d/s (open loop), held idle%s\n\n' "$IDLE" "$ARRIVAL" "${IDLE_NOTE:+ $IDLE_NOTE}"

hdr='%-32s %-8s %13s %13s %7s %7s %7s %7s %7s %8s %9s %9s %6s %17s %13s %6s\n'
printf "$hdr" target case "sessions/s" "CPU/session" "1-core" "vs" "vs mbed" "vs own" "resumed" "jabberd2" "client" "busy" "other" "TLS handshake" "RSS/session" errors
printf "$hdr" "" "" "med (max)" "min/med us" "cap/s" "proxy" "floor" "floor" "/full" "CPU us" "CPU us" "srv/cli" "work" "p50/p99 ms" "med KB" ""
for t in "${TLIST[@]}"; do
    own=${T_OWN[$t]}
    label=${T_LABEL[$t]}
    for c in full resumed idle; do
        rt=$(stat "$t" "$c" rate)
        [ -n "$rt" ] || continue
        cpu=$(stat "$t" "$c" cpu)
        med=$(fld 2 "$cpu")
        errs=$(awk -v t="$t" -v c="$c" '$1 == t && $2 == c && $4 == "errors" { s += $5 } END { print s + 0 }' "$WORK/metrics")
        p50=$(fld 2 "$(stat "$t" "$c" p50)")
        p99=$(fld 2 "$(stat "$t" "$c" p99)")
        lat=$(awk -v a="$p50" -v b="$p99" 'BEGIN { printf "%.1f/%.1f", a / 1000, b / 1000 }')
        busy="$(fmt '%.0f' "$(fld 2 "$(stat "$t" "$c" sbusy)")")%/$(fmt '%.0f' "$(fld 2 "$(stat "$t" "$c" cbusy)")")%"
        other="$(fmt '%.0f' "$(fld 2 "$(stat "$t" "$c" other)")")%"
        if [ "$c" = idle ]; then
            rss=$(stat "$t" idle rss)
            rss2=$(stat "$t" idle rss_idle)
            printf "$hdr" "$label" "idle" "$(fmt '%.0f' "$(fld 2 "$rt")")" \
                "$([ -n "$cpu" ] && printf '%s/%s' "$(fld 1 "$cpu")" "$med" || printf -- '-')" "" \
                "$(rmed "$t" idle rss_idle proxy idle rss_idle)" "" "" "" "" "" "$busy" "$other" "$lat" \
                "$([ -n "$rss" ] && printf '%s/%s' "$(fld 2 "$rss")" "$(fld 2 "$rss2")" || printf -- '-')" "$errs"
        else
            resf=-
            [ "$c" = full ] || resf=$(rmed "$t" resumed cpu "$t" full cpu)
            flm=-
            flo=-
            if [ "$own" != none ]; then
                flm=$(rmed "$t" "$c" cpu floor mbedtls us)
                flo=$(rmed "$t" "$c" cpu floor "$own" us)
            fi
            printf "$hdr" "$label" "$c" \
                "$(fmt '%.0f' "$(fld 2 "$rt")") ($(fmt '%.0f' "$(fld 3 "$rt")"))" \
                "$([ -n "$cpu" ] && printf '%s/%s' "$(fld 1 "$cpu")" "$med" || printf -- '-')" \
                "$([ -n "$med" ] && awk -v m="$med" 'BEGIN { if (m > 0) printf "%.0f", 1e6 / m; else printf "-" }' || printf -- '-')" \
                "$(rmed "$t" "$c" cpu proxy "$c" cpu)" "$flm" "$flo" "$resf" \
                "$(fmt '%.0f' "$(fld 2 "$(stat "$t" "$c" bk)")")" \
                "$(fmt '%.0f' "$(fld 2 "$(stat "$t" "$c" cli)")")" \
                "$busy" "$other" "$lat" "" "$errs"
        fi
        label=""
    done
done
cat <<EOF

  CPU/session: utime+stime of the target's processes over a case, divided by its sessions (for
    the resumed case, plus the priming one); for jabberd2's own TLS, its c2s; for plaintext, c2s.
  1-core cap/s = 1e6 / median CPU/session: the handshakes one core of this VM could carry.
  Ratios are taken within each round, then their median is shown: vs proxy: CPU over the
    proxy's (idle rows: RSS over the proxy's); vs mbed floor / vs own floor: CPU over the
    round's crypto floor of mbedTLS / of the target's own TLS library (mbedTLS for the proxy,
    OpenSSL for the others); resumed/full: resumed CPU over full CPU.
  jabberd2 CPU: its router, sm and c2s behind a front (router and sm only for its own TLS and
    for plaintext, whose c2s is the target). client CPU: xtp-load per session.
  busy: CPU time over the setup's wall time, server (all its threads) / load generator (one
    thread): 100% is one core. other work: the rest of the machine's busy time (/proc/stat)
    over the same wall time, i.e. what neither the target, jabberd2 nor the load generator
    used. The two vCPUs are shared with jabberd2 and that other work, so a rate is the
    machine's, and the CPU per session is the comparable number. Idle rows: CPU/session and
    busy over the ramp (handshake, stream, and upkeep of the sessions already open).
  TLS handshake: client-side, from the first byte out to Finished (plaintext: connect to
    features); full/resumed rows at concurrency $CONC (closed loop), idle rows at $ARRIVAL/s (open
    loop). RSS/session: VmRSS of the fresh target while N sessions are held, minus before, / N:
    right after the ramp / after $SETTLE s more of idleness (the proxy trims sessions idle for
    5 s; --quick settles only the proxy, the others' second value is then their first). Idle
    rows' "vs proxy" compares the second values.
EOF
printf '  negotiated:'
for t in "${TLIST[@]}"; do
    [ "${T_MODE[$t]}" = plain ] && continue
    printf ' %s %s;' "$t" "$(last "$t" idle ver)"
done
printf '\n  resumed handshakes seen by the client (last round):'
for t in "${TLIST[@]}"; do
    [ "${T_MODE[$t]}" = plain ] && continue
    printf ' %s %s;' "$t" "$(last "$t" resumed resumed)"
done
printf '\n'

if [ "${XTP_BENCH_PERF:-0}" = 1 ]; then
    for t in "${TLIST[@]}"; do
        f=$WORK/perf.$t.data
        [ -f "$f" ] || continue
        printf '\nperf, round 1, %s, full handshakes: CPU by library\n' "$t"
        perf report -i "$f" --no-children --sort dso --stdio 2>/dev/null |
            grep -E '^ +[0-9]+\.[0-9]+%' | sed -n '1,8p' | awk '{ printf "    %7s  %s\n", $1, $2 }'
        if [ "$t" = proxy ]; then
            # Inclusive shares of the calls mbedTLS 3.6 makes for a TLS 1.3 handshake's
            # asymmetric work (they do not nest in each other), as in c2s.sh.
            perf report -i "$f" --children --sort symbol --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]+\.[0-9]+%' >"$WORK/perf.children" || true
            total=0
            printf '  the proxy, inclusive:'
            for sym in psa_export_public_key psa_generate_key psa_raw_key_agreement mbedtls_pk_sign; do
                v=$(awk -v s="$sym" '$NF == s || $(NF - 2) == s { gsub("%", "", $1); print $1; exit }' "$WORK/perf.children")
                v=${v:-0}
                total=$(awk -v a="$total" -v b="$v" 'BEGIN { print a + b }')
                printf ' %s %.1f%%;' "$sym" "$v"
            done
            printf ' asymmetric crypto %.1f%%\n' "$total"
            printf '  the proxy, top self time:\n'
            perf report -i "$f" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]+\.[0-9]+%' | sed -n '1,10p' | sed 's/^ */    /; s/ *- *- *$//' || true
        fi
    done
fi
[ "$RC" -eq 0 ] || say "some runs reported errors (see above); numbers may be off"
exit "$RC"
