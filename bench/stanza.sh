#!/bin/bash
# stanza.sh: the stanza path (issue 5, target 4). Starts a private jabberd2 and the proxy on
# loopback, logs in 2 x PAIRS sessions and has the pairs exchange 200-byte messages at a bounded
# rate. Every run is an A/B run (xtp-load --b-port): half of the pairs talk to jabberd2 directly
# (plaintext, the baseline), the other half through the proxy, at the same time, through the
# same jabberd2 processes. jabberd2 stalls for up to 40 ms now and then (it never sets
# TCP_NODELAY on its internal connections), and those stalls hit both groups alike, so the
# difference of the two latency distributions is what the proxy adds. Rounds alternate which
# pairs go through the proxy. For each run the script also reads the CPU time of the proxy and of
# the load generator over the message phase only (from --ready-file to --done-file) and divides
# it by the stanzas the proxy relayed. Then it prints one table.
#
#   bench/stanza.sh BUILD_DIR
#
# BUILD_DIR holds xmpp-tls-proxy and bench/xtp-load (a RelWithDebInfo build is the one to
# measure). Nothing is built here. Environment (defaults in brackets):
#   XTP_BENCH_PORT_BASE [23300]   jabberd2 c2s on BASE+1, the proxy on BASE+2 (STARTTLS) and
#                                 BASE+3 (Direct TLS), all on 127.0.0.1
#   XTP_BENCH_PAIRS [500]         logged-in pairs per run (2 x PAIRS sessions, half proxied)
#   XTP_BENCH_RATES ["0.5 2"]     messages per second and session; one set of rounds per rate
#   XTP_BENCH_DURATION [10]       seconds of messages per run
#   XTP_BENCH_ROUNDS [4]          A/B runs per rate; odd rounds send the odd pairs through the
#                                 proxy, even rounds the even pairs
#   XTP_BENCH_TLS [direct]        how the proxied sessions connect: direct or starttls
#   XTP_BENCH_TLS_LIB [openssl]   the load generator's TLS library (mbedtls without OpenSSL)
#   XTP_BENCH_CONTROL [1]         after each rate's rounds, one A/A run (both groups straight to
#                                 jabberd2): its B - A shows how much of "added" is noise
#   XTP_BENCH_CAPTURE [1]         capture loopback packets (AF_PACKET, needs CAP_NET_RAW) for
#                                 the proxy's own time per message (its in and out hops)
#   XTP_BENCH_KEEP=1              keep the work folder (logs, every run's output)
#
# Every process started here is stopped on exit (trap). Exit status: 0 when every run was
# clean, 1 when a run reported errors (the table still prints, marked), 2 on bad usage or when
# the servers could not start.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
DOMAIN=example.test
BASE=${XTP_BENCH_PORT_BASE:-23300}
PAIRS=${XTP_BENCH_PAIRS:-500}
RATES=${XTP_BENCH_RATES:-0.5 2}
DURATION=${XTP_BENCH_DURATION:-10}
ROUNDS=${XTP_BENCH_ROUNDS:-4}
TLSMODE=${XTP_BENCH_TLS:-direct}
CERTS=$SRC/tests/certs

die() {
    printf 'stanza.sh: %s\n' "$*" >&2
    exit 2
}

[ $# -eq 1 ] || die "usage: bench/stanza.sh BUILD_DIR"
[ -d "$1" ] || die "no build folder $1"
BUILD=$(cd "$1" && pwd)
PROXY=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
LOAD=$BUILD/bench/xtp-load
for f in "$PROXY" "$LOAD"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD)"
done
for v in BASE PAIRS DURATION ROUNDS; do
    case "${!v}" in
    '' | *[!0-9]*) die "$v must be a whole number, not '${!v}'" ;;
    esac
done
for r in $RATES; do
    case "$r" in
    '' | *[!0-9.]* | *.*.*) die "XTP_BENCH_RATES: '$r' is not a rate" ;;
    esac
done
if [ $((PAIRS % 2)) -ne 0 ] || [ "$PAIRS" -lt 2 ]; then
    die "XTP_BENCH_PAIRS must be even (A/B halves)"
fi
[ "$ROUNDS" -ge 1 ] || die "XTP_BENCH_ROUNDS must be at least 1"
case "$TLSMODE" in direct | starttls) ;; *) die "XTP_BENCH_TLS must be direct or starttls" ;; esac
{ [ "$BASE" -ge 1024 ] && [ "$BASE" -le 65000 ]; } || die "XTP_BENCH_PORT_BASE out of range: $BASE"
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
[ $((BASE + 3)) -lt "$eph_lo" ] || [ $((BASE + 1)) -gt "$eph_hi" ] ||
    die "ports $((BASE + 1))-$((BASE + 3)) overlap the ephemeral range $eph_lo-$eph_hi: set XTP_BENCH_PORT_BASE"
BACKEND_PORT=$((BASE + 1))
STARTTLS_PORT=$((BASE + 2))
DIRECT_PORT=$((BASE + 3))
PROXY_PORT=$DIRECT_PORT
[ "$TLSMODE" = direct ] || PROXY_PORT=$STARTTLS_PORT
SESSIONS=$((PAIRS * 2))
TLS_LIB=${XTP_BENCH_TLS_LIB:-openssl}
"$LOAD" --help | grep -q 'or openssl' || TLS_LIB=mbedtls

need=$((SESSIONS * 2 + 512))
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge "$need" ] ||
    die "ulimit -Hn is $hard; $SESSIONS sessions need $need descriptors"
[ "$hard" != unlimited ] || hard=$((need > 65536 ? need : 65536))
ulimit -n "$hard"
for p in "$BACKEND_PORT" "$STARTTLS_PORT" "$DIRECT_PORT"; do
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] ||
        die "port $p is in use (set XTP_BENCH_PORT_BASE to move all three)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xtp-stanza.XXXXXX")
PROXY_PID=
LOAD_PID=
CAP_PID=
CONTROL=${XTP_BENCH_CONTROL:-1}
SETTLE=1 # idle seconds around the messages: the capture and the CPU samples start in between
RC=0
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_pid "$LOAD_PID"
    stop_pid "$CAP_PID"
    stop_pid "$PROXY_PID"
    "$SRC/scripts/jabberd2-local.sh" stop "$WORK/jabberd2" >/dev/null 2>&1
    if [ "$rc" -eq 0 ] && [ "${XTP_BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        printf 'stanza.sh: logs kept in %s\n' "$WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

CLK_TCK=$(getconf CLK_TCK)
CAPTURE=${XTP_BENCH_CAPTURE:-1}
[ "$CAPTURE" = 0 ] || python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)' \
    2>/dev/null || {
    printf 'stanza.sh: no AF_PACKET socket (needs CAP_NET_RAW): no capture, no hop times\n' >&2
    CAPTURE=0
}
cat >"$WORK/capture.py" <<'PYEOF'
# The proxy's own time per stanza, from the packets on both of its sides (loopback capture).
#   capture.py capture OUT PROXY_PORT BACKEND_PORT   (until SIGTERM: packets to OUT)
#   capture.py hops OUT PORTLOG PROXY_PORT BACKEND_PORT
# capture: an AF_PACKET socket on lo with a classic BPF filter (outgoing IPv4 TCP packets to or
# from either port) and kernel timestamps (SO_TIMESTAMPNS: taken when the packet passed the
# tap, not when this script read it). Keeps each data segment's time, ports and, on the
# plaintext port, its first bytes.
# hops: the inbound hop of a message is the time from the sender's TLS segment to the proxy
# (the last one on that connection before) to the plaintext <message/> leaving the proxy for
# jabberd2; the outbound hop is the time from jabberd2's plaintext <message/> to the proxy to
# the first TLS segment the proxy sends the receiver after it. Sessions are told apart by the
# 'to' of the message and xtp-load --port-log; a session sends at most a few messages per
# second, so the nearest segment on its own connection is the right one.
import ctypes, os, re, signal, socket, struct, sys

def capture(out, pport, bport):
    ETH_P_ALL = 3
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    prog = [  # (code, jt, jf, k)
        (0x20, 0, 0, 0xFFFFF004),  # A = skb->pkt_type
        (0x15, 0, 11, 4),          # PACKET_OUTGOING: each loopback packet once
        (0x28, 0, 0, 12),          # ethertype
        (0x15, 0, 9, 0x0800),
        (0x30, 0, 0, 23),          # IP protocol
        (0x15, 0, 7, 6),
        (0xB1, 0, 0, 14),          # X = IP header length
        (0x48, 0, 0, 14),          # source port
        (0x15, 5, 0, pport),
        (0x15, 4, 0, bport),
        (0x48, 0, 0, 16),          # destination port
        (0x15, 2, 0, pport),
        (0x15, 1, 0, bport),
        (0x06, 0, 0, 0),
        (0x06, 0, 0, 0x40000),
    ]
    buf = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    s.setsockopt(socket.SOL_SOCKET, 26, fprog)              # SO_ATTACH_FILTER
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)           # SO_RCVBUFFORCE
    s.setsockopt(socket.SOL_SOCKET, 35, 1)                  # SO_TIMESTAMPNS
    s.bind(("lo", 0))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    s.settimeout(0.2)
    recs = []
    open(out + ".started", "w").close()
    while not stop:
        try:
            data, anc, _, _ = s.recvmsg(600, 64)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        ts = None
        for lvl, typ, val in anc:
            if lvl == socket.SOL_SOCKET and typ == 35:
                sec, nsec = struct.unpack("qq", val[:16])
                ts = sec * 1000000000 + nsec
        if ts is None or len(data) < 54:
            continue
        ihl = (data[14] & 0xF) * 4
        tot = struct.unpack("!H", data[16:18])[0]
        t = 14 + ihl
        sp, dp = struct.unpack("!HH", data[t:t + 4])
        doff = (data[t + 12] >> 4) * 4
        plen = tot - ihl - doff
        if plen <= 0:
            continue
        head = data[t + doff:t + doff + 320] if bport in (sp, dp) else b""
        recs.append((ts, sp, dp, plen, head))
    # drop count (tp_drops) for the report
    try:
        st = s.getsockopt(263, 6, 8)  # SOL_PACKET, PACKET_STATISTICS
        drops = struct.unpack("II", st)[1]
    except OSError:
        drops = -1
    with open(out, "w") as f:
        f.write(f"# drops {drops}\n")
        for ts, sp, dp, plen, head in recs:
            f.write(f"{ts} {sp} {dp} {plen} {head.hex()}\n")

def pct(v, p):
    if not v:
        return 0
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100 * len(v)))]

def hops(out, portlog, pport, bport):
    port_of, group_of = {}, {}
    for line in open(portlog):
        i, port, g = line.split()
        port_of[int(i)] = int(port)
        group_of[int(i)] = g
    proxied_ports = {port_of[i] for i in port_of}
    drops = 0
    segs = {}  # (sport, dport) -> [ts...]
    plain = []  # (ts, sport, dport, text)
    for line in open(out):
        if line.startswith("#"):
            drops = int(line.split()[2])
            continue
        p = line.split()
        ts, sp, dp = int(p[0]), int(p[1]), int(p[2])
        segs.setdefault((sp, dp), []).append(ts)
        if len(p) > 4:
            plain.append((ts, sp, dp, bytes.fromhex(p[4]).decode("latin-1")))
    import bisect
    rx = re.compile(r"<message[^>]*\bto=['\"]user(\d+)@")
    tx = re.compile(r"T=(\d+) S=(\d+)")
    inb, outb, per_msg = [], [], {}
    for ts, sp, dp, text in plain:
        m, t = rx.search(text), tx.search(text)
        if not m or not t:
            continue
        to = int(m.group(1))
        if dp == bport:  # towards jabberd2: from the proxy only if the sender is proxied
            sender = to ^ 1
            if sender not in port_of or (port_of[sender], pport) not in segs:
                continue  # a direct client (its own connection to jabberd2)
            if sp == port_of[sender]:
                continue  # the direct client itself, not the proxy
            lst = segs[(port_of[sender], pport)]
            k = bisect.bisect_right(lst, ts) - 1
            if k >= 0 and ts - lst[k] < 1_000_000_000:
                d = ts - lst[k]
                inb.append(d)
                per_msg.setdefault(t.groups(), [None, None])[0] = d
        elif sp == bport:  # from jabberd2: to the proxy when the receiver is proxied
            if to not in port_of or (pport, port_of[to]) not in segs or dp == port_of[to]:
                continue
            lst = segs[(pport, port_of[to])]
            k = bisect.bisect_left(lst, ts)
            if k < len(lst) and lst[k] - ts < 1_000_000_000:
                d = lst[k] - ts
                outb.append(d)
                per_msg.setdefault(t.groups(), [None, None])[1] = d
    both = [a + b for a, b in per_msg.values() if a is not None and b is not None]
    def show(name, v):
        print(f"{name} n={len(v)} p50_us={pct(v, 50) / 1e3:.1f} p90_us={pct(v, 90) / 1e3:.1f} "
              f"p99_us={pct(v, 99) / 1e3:.1f} max_us={max(v) / 1e3 if v else 0:.1f}")
    show("in", inb)
    show("out", outb)
    show("both", both)
    print(f"drops {drops}")

if sys.argv[1] == "capture":
    capture(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else:
    hops(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
PYEOF

# cpu PID: "utime stime run_ns wait_ns" of the whole process. utime and stime (ticks) are what
# /proc/PID/stat (fields 14 and 15) says; run_ns and wait_ns are the sums over every thread's
# /proc/PID/task/TID/schedstat: time on a CPU (a finer grain than 1/CLK_TCK) and time spent
# runnable but waiting for a CPU (the other work on a shared machine).
cpu() {
    local stat ns=0 wait=0 t a b
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) }
    for t in /proc/"$1"/task/*/schedstat; do
        read -r a b _ <"$t" && ns=$((ns + a)) && wait=$((wait + b))
    done
    awk -v ns="$ns" -v w="$wait" '{ print $12, $13, ns, w }' <<<"$stat"
}

# sys_counts PID: "read-like syscalls, write-like syscalls, voluntary context switches" of the
# process (/proc/PID/io syscr and syscw; /proc/PID/status, summed over its threads): a sleep in
# epoll_wait() that ends with new input is one voluntary switch, so this counts the wakeups.
sys_counts() {
    local r w v=0 t
    r=$(sed -n 's/^syscr: //p' "/proc/$1/io")
    w=$(sed -n 's/^syscw: //p' "/proc/$1/io")
    for t in /proc/"$1"/task/*/status; do
        v=$((v + $(sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "$t")))
    done
    echo "$r $w $v"
}

wait_file() { # wait_file FILE SECONDS: until FILE exists or xtp-load has exited
    local i
    for ((i = 0; i < $2 * 200; i++)); do
        [ -f "$1" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || return 1
        sleep 0.005
    done
    return 1
}

# ---- servers ----------------------------------------------------------------------------
printf 'stanza.sh: starting jabberd2 (%d users) and the proxy in %s\n' "$SESSIONS" "$WORK" >&2
mkdir -p "$WORK/etc"
cp -r "${JABBERD2_ETC:-/etc/jabberd2}/." "$WORK/etc/"
sed -i "s#<max_fds>[0-9]*</max_fds>#<max_fds>$need</max_fds>#" "$WORK/etc/c2s.xml"
users=""
for ((i = 0; i < SESSIONS; i++)); do users="$users user$i:secret"; done
JABBERD2_ETC=$WORK/etc JABBERD2_USERS=$users \
    "$SRC/scripts/jabberd2-local.sh" start "$WORK/jabberd2" "$DOMAIN" "$BACKEND_PORT" >/dev/null ||
    die "jabberd2 did not start"
C2S_PID=$(awk '$1 == "c2s" { print $2 }' "$WORK/jabberd2/pids")
SM_PID=$(awk '$1 == "sm" { print $2 }' "$WORK/jabberd2/pids")
ROUTER_PID=$(awk '$1 == "router" { print $2 }' "$WORK/jabberd2/pids")

cat >"$WORK/proxy.yaml" <<EOF
log: { level: warn }
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
LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

# ---- the runs -------------------------------------------------------------------------------
# run NAME RATE PROXIED_GROUP: one A/B run. PROXIED_GROUP B: the odd pairs go through the proxy
# (A = jabberd2), A: the even pairs do. Writes NAME.out and NAME.cpu (the CPU of the proxy, the
# load generator and jabberd2's three processes at the start and the end of the message phase).
run() {
    local name=$1 rate=$2 grp=$3 rc=0 args
    if [ "$grp" = B ]; then
        args=(--mode plain --port "$BACKEND_PORT" --b-mode "$TLSMODE" --b-port "$PROXY_PORT")
    elif [ "$grp" = AA ]; then # the control: both groups straight to jabberd2
        args=(--mode plain --port "$BACKEND_PORT" --b-mode plain --b-port "$BACKEND_PORT")
    else
        args=(--mode "$TLSMODE" --port "$PROXY_PORT" --b-mode plain --b-port "$BACKEND_PORT")
    fi
    rm -f "$WORK/$name.ready" "$WORK/$name.done"
    "$LOAD" --domain "$DOMAIN" "${args[@]}" --tls-lib "$TLS_LIB" -n "$SESSIONS" -c 32 --login \
        --rate "$rate" --duration "$DURATION" --timeout $((DURATION + 120)) \
        --ready-file "$WORK/$name.ready" --done-file "$WORK/$name.done" --port-log "$WORK/$name.ports" \
        --settle "$SETTLE" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    LOAD_PID=$!
    if [ "$CAPTURE" = 1 ]; then
        python3 "$WORK/capture.py" capture "$WORK/$name.pkts" "$PROXY_PORT" "$BACKEND_PORT" &
        CAP_PID=$!
    fi
    if wait_file "$WORK/$name.ready" 120; then
        { cpu "$PROXY_PID"; cpu "$LOAD_PID"; cpu "$C2S_PID"; cpu "$SM_PID"; cpu "$ROUTER_PID"; date +%s.%N
            sys_counts "$PROXY_PID"; } >"$WORK/$name.cpu0"
        if wait_file "$WORK/$name.done" $((DURATION + 10)); then
            { cpu "$PROXY_PID"; cpu "$LOAD_PID"; cpu "$C2S_PID"; cpu "$SM_PID"; cpu "$ROUTER_PID"; date +%s.%N
                sys_counts "$PROXY_PID"; } >"$WORK/$name.cpu1"
        fi
    fi
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=
    if [ -n "$CAP_PID" ]; then
        kill -TERM "$CAP_PID" 2>/dev/null || true
        wait "$CAP_PID" 2>/dev/null || true
        CAP_PID=
        # the proxied sessions only: their ports and groups
        awk -v g="$grp" '$3 == g' "$WORK/$name.ports" >"$WORK/$name.pports"
        python3 "$WORK/capture.py" hops "$WORK/$name.pkts" "$WORK/$name.pports" "$PROXY_PORT" \
            "$BACKEND_PORT" >"$WORK/$name.hops" 2>"$WORK/$name.hops.err" || true
    fi
    if [ "$rc" -ne 0 ]; then
        printf 'stanza.sh: run %s exited with %d:\n' "$name" "$rc" >&2
        tail -n 5 "$WORK/$name.err" >&2
        RC=1
    fi
    grep -q '^RESULT ' "$WORK/$name.out" || die "run $name printed no result (see $WORK/$name.err)"
    [ -f "$WORK/$name.cpu1" ] || { printf 'stanza.sh: run %s: no CPU sample at the end\n' "$name" >&2; RC=1; }
}

for rate in $RATES; do
    for ((r = 1; r <= ROUNDS; r++)); do
        grp=B
        [ $((r % 2)) -eq 1 ] || grp=A
        printf 'stanza.sh: rate %s/s per session, round %d of %d (proxied group %s)\n' \
            "$rate" "$r" "$ROUNDS" "$grp" >&2
        run "r${rate}-$r" "$rate" "$grp"
        echo "r${rate}-$r $grp" >>"$WORK/runs"
    done
    if [ "$CONTROL" = 1 ]; then
        printf 'stanza.sh: rate %s/s per session, control run: both groups straight to jabberd2\n' "$rate" >&2
        run "r${rate}-aa" "$rate" AA
        echo "r${rate}-aa AA" >>"$WORK/runs"
    fi
done

# ---- the table ------------------------------------------------------------------------------
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
printf '\nxmpp-tls-proxy stanza path (bench/stanza.sh), %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf 'machine: %s vCPU (%s), %s %s; %s; load generator and servers share the machine\n' \
    "$(nproc)" "$cpu_model" "$(uname -s)" "$(uname -r)" "$("$PROXY" --version | sed -n 2p)"
printf 'load average at the start: %s, at the end: %s; %d s in all\n' "$LOAD_AT_START" \
    "$(cut -d' ' -f1-3 /proc/loadavg)" $(($(date +%s) - T_START))
printf '%d logged-in sessions per run (%d pairs): %d pairs straight to jabberd2 (plaintext), %d pairs\n' \
    "$SESSIONS" "$PAIRS" $((PAIRS / 2)) $((PAIRS / 2))
printf 'through the proxy (%s, client TLS %s), at the same time; %s-byte messages, %d s per run\n' \
    "$TLSMODE" "$TLS_LIB" 200 "$DURATION"
printf 'added = proxied minus direct, same run; CPU over the message phase only; a stanza = one\n'
printf 'message relayed in one direction (each message crosses the proxy twice: in, then out)\n\n'

printf '%-7s %-5s %8s %8s | %21s | %21s | %21s | %9s %9s %9s %8s %9s %6s\n' \
    rate round msgs/s "proxied" "direct p50/p90/p99 ms" "proxied p50/p90/p99" "added p50/p90/p99 us" \
    "proxy ns" "=stanza/s" "load ns" "jab2 ns" "busy p/l" errors
printf '%-7s %-5s %8s %8s | %21s | %21s | %21s | %9s %9s %9s %8s %9s %6s\n' \
    "/sess" "" "(all)" "msgs" "" "" "" "/stanza" "per core" "/stanza" "/msg" "" ""
: >"$WORK/summary"
while read -r name grp; do
    o=$WORK/$name.out
    if [ "$grp" = AA ]; then
        echo "$name $(result msg_p50_us "$o") $(result msg_p90_us "$o") $(result msg_p99_us "$o") \
$(result b_msg_p50_us "$o") $(result b_msg_p90_us "$o") $(result b_msg_p99_us "$o") $(result errors "$o")" >>"$WORK/control"
        continue
    fi
    rate=${name#r}
    rate=${rate%-*}
    round=${name##*-}
    if [ "$grp" = B ]; then d=msg; p=b_msg; else d=b_msg; p=msg; fi
    # messages the proxied group received: each crossed the proxy twice
    if [ "$p" = b_msg ]; then
        pmsgs=$(result b_msgs_rcvd "$o")
    else
        pmsgs=$(($(result msgs_rcvd "$o") - $(result b_msgs_rcvd "$o")))
    fi
    if [ -f "$WORK/$name.cpu1" ]; then
        paste -d' ' "$WORK/$name.cpu0" "$WORK/$name.cpu1" >"$WORK/$name.cpu"
    else
        : >"$WORK/$name.cpu"
    fi
    awk -v name="$name" -v dur="$DURATION" -v rate="$rate" -v round="$round" -v pm="$pmsgs" -v hz="$CLK_TCK" \
        -v sent="$(result msgs_sent "$o")" -v err="$(result errors "$o")" \
        -v d50="$(result ${d}_p50_us "$o")" -v d90="$(result ${d}_p90_us "$o")" -v d99="$(result ${d}_p99_us "$o")" \
        -v p50="$(result ${p}_p50_us "$o")" -v p90="$(result ${p}_p90_us "$o")" -v p99="$(result ${p}_p99_us "$o")" \
        -v summary="$WORK/summary" '
        { line[NR] = $0 }
        END {
            # lines: proxy, load, c2s, sm, router (utime stime run_ns wait_ns, before then
            # after), then the wall clock (t0 t1)
            n = NR
            if (n >= 6) {
                split(line[1], px); split(line[2], ld); split(line[6], w)
                wall = w[2] - w[1]
                jns = 0
                for (i = 3; i <= 5; i++) { split(line[i], j); jns += j[7] - j[3] }
                pns = px[7] - px[3]; lns = ld[7] - ld[3]; pwait = px[8] - px[4]
                putick = px[5] - px[1]; pstick = px[6] - px[2]; pticks = putick + pstick
                split(line[7], sc)  # the proxy: syscr syscw voluntary switches, before then after
                nrd = sc[4] - sc[1]; nwr = sc[5] - sc[2]; nvcs = sc[6] - sc[3]
            }
            st = 2 * pm
            ns_st = st > 0 && n >= 6 ? pns / st : 0
            mps = sent / dur
            per_core = ns_st > 0 ? 1e9 / ns_st : 0
            lst = st > 0 ? lns / st : 0
            jmsg = sent > 0 ? jns / sent : 0
            pbusy = pns / dur / 1e7
            lbusy = lns / dur / 1e7
            tick_st = st > 0 ? pticks * 1e9 / hz / st : 0
            printf("%-7s %-5s %8.0f %8d | %6.2f/%6.2f/%7.2f | %6.2f/%6.2f/%7.2f | %6d/%6d/%7d | %9.0f %9.0f %9.0f %8.0f %4.0f%%/%3.0f%% %6s\n",
                rate, round, mps, pm, d50 / 1e3, d90 / 1e3, d99 / 1e3,
                p50 / 1e3, p90 / 1e3, p99 / 1e3, p50 - d50, p90 - d90, p99 - d99,
                ns_st, per_core, lst, jmsg, pbusy, lbusy, err)
            # for the medians; the utime+stime figure checks the schedstat one
            printf("%s %s %d %d %d %.0f %.0f %.0f %.0f %.0f %.0f\n", rate, round, p50 - d50, p90 - d90,
                p99 - d99, ns_st, tick_st, lst, st > 0 ? putick * 1e9 / hz / st : 0,
                st > 0 ? pstick * 1e9 / hz / st : 0, st > 0 ? pwait / st : 0) >> summary
            if (st > 0)
                printf("%s %s %.2f %.2f %.2f\n", rate, round, nrd / st, nwr / st, nvcs / st) >> (summary ".sys")
        }' "$WORK/$name.cpu"
done <"$WORK/runs"

hopv() { # hopv RUN KIND KEY: a value from RUN.hops
    sed -n "s/^$2 .*$3=\([0-9.]*\).*/\1/p" "$WORK/$1.hops" 2>/dev/null | head -n 1
}
if [ "$CAPTURE" = 1 ]; then
    printf '\nthe proxy'"'"'s own time per message, from a loopback capture (kernel timestamps on both sides)\n'
    printf 'in: client TLS segment -> plaintext to jabberd2; out: jabberd2 -> TLS segment to the client\n'
    printf '%-7s %-5s | %23s | %23s | %23s | %9s %6s\n' rate round "in p50/p90/p99 us" \
        "out p50/p90/p99 us" "in+out p50/p90/p99 us" "matched" drops
    while read -r name grp; do
        [ "$grp" != AA ] || continue
        rate=${name#r}
        rate=${rate%-*}
        printf '%-7s %-5s | %7s/%7s/%7s | %7s/%7s/%7s | %7s/%7s/%7s | %9s %6s\n' "$rate" "${name##*-}" \
            "$(hopv "$name" in p50_us)" "$(hopv "$name" in p90_us)" "$(hopv "$name" in p99_us)" \
            "$(hopv "$name" out p50_us)" "$(hopv "$name" out p90_us)" "$(hopv "$name" out p99_us)" \
            "$(hopv "$name" both p50_us)" "$(hopv "$name" both p90_us)" "$(hopv "$name" both p99_us)" \
            "$(hopv "$name" both n)" "$(sed -n 's/^drops //p' "$WORK/$name.hops" 2>/dev/null)"
        echo "$rate $(hopv "$name" both p50_us) $(hopv "$name" both p99_us)" >>"$WORK/hops.summary"
    done <"$WORK/runs"
fi

if [ -f "$WORK/control" ]; then
    printf '\ncontrol runs: both groups straight to jabberd2, so the difference is the method'"'"'s noise\n'
    awk '{ r = $1; sub(/^r/, "", r); sub(/-aa$/, "", r)
        printf "  %s msg/s per session: A p50/p90/p99 %.2f/%.2f/%.2f ms, B %.2f/%.2f/%.2f ms: B - A %+d/%+d/%+d us; errors %s\n",
            r, $2 / 1e3, $3 / 1e3, $4 / 1e3, $5 / 1e3, $6 / 1e3, $7 / 1e3, $5 - $2, $6 - $3, $7 - $4, $8 }' \
        "$WORK/control"
fi

printf '\nper rate, median over the rounds (min..max):\n'
for rate in $RATES; do
    awk -v rate="$rate" '$1 == rate' "$WORK/summary" | sort -k3,3n >"$WORK/s.tmp"
    med2() { sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.2f", m }'; }
    med() { sort -n | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f (%.0f..%.0f)", m, v[1], v[NR] }'; }
    printf '  %s msg/s per session: added p50 %s us, p90 %s us, p99 %s us\n' "$rate" \
        "$(cut -d' ' -f3 "$WORK/s.tmp" | med)" "$(cut -d' ' -f4 "$WORK/s.tmp" | med)" \
        "$(cut -d' ' -f5 "$WORK/s.tmp" | med)"
    printf '      proxy CPU per stanza %s ns (schedstat), %s ns (utime+stime); load generator %s ns\n' \
        "$(cut -d' ' -f6 "$WORK/s.tmp" | med)" "$(cut -d' ' -f7 "$WORK/s.tmp" | med)" \
        "$(cut -d' ' -f8 "$WORK/s.tmp" | med)"
    printf '      of which user %s ns, kernel %s ns (utime, stime); the proxy waited %s ns per stanza\n' \
        "$(cut -d' ' -f9 "$WORK/s.tmp" | med)" "$(cut -d' ' -f10 "$WORK/s.tmp" | med)" \
        "$(cut -d' ' -f11 "$WORK/s.tmp" | med)"
    printf '      for a CPU while runnable (schedstat run delay: the machine'"'"'s other work)\n'
    awk -v r="$rate" '$1 == r' "$WORK/summary.sys" >"$WORK/s.sys"
    printf '      system calls per stanza: %s reads, %s writes; %s wakeups (voluntary context switches)\n' \
        "$(cut -d' ' -f3 "$WORK/s.sys" | med2)" "$(cut -d' ' -f4 "$WORK/s.sys" | med2)" \
        "$(cut -d' ' -f5 "$WORK/s.sys" | med2)"
    awk '{ print $6 }' "$WORK/s.tmp" | sort -n | awk '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        if (m > 0) printf "      = %.0f stanzas/s per core of the proxy (1e9 / median ns per stanza)\n", 1e9 / m }'
    if [ -f "$WORK/hops.summary" ]; then
        printf '      the proxy'"'"'s own time per message (in + out hops, capture): p50 %s us, p99 %s us\n' \
            "$(awk -v r="$rate" '$1 == r { print $2 }' "$WORK/hops.summary" | med)" \
            "$(awk -v r="$rate" '$1 == r { print $3 }' "$WORK/hops.summary" | med)"
    fi
done
printf '\ncolumns: proxy/load ns per stanza = CPU time (all threads, schedstat) over the message phase / (2 x\n'
printf 'proxied messages); jab2 ns/msg = c2s+sm+router CPU / all messages; busy p/l = proxy / load generator\n'
printf 'CPU over wall time (100%% = one core). jabberd2 caps the rate (its sm and router are single\n'
printf 'processes); the per-core figure comes from the CPU per stanza, not from a saturated run.\n'
[ "$RC" -eq 0 ] || printf '\nstanza.sh: some runs reported errors (see above); numbers may be off\n' >&2
exit "$RC"
