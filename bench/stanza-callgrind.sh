#!/bin/bash
# stanza-callgrind.sh: what one relayed stanza costs the proxy, in instructions, heap calls and
# copied bytes. Unlike CPU time these numbers repeat from run to run on a shared machine.
#
#   bench/stanza-callgrind.sh BUILD_DIR
#
# BUILD_DIR: a build without sanitizers (RelWithDebInfo is the one to quote; Debug works).
# It starts a private jabberd2 and the proxy under Valgrind, logs in 2 x PAIRS sessions through
# the proxy and has the pairs exchange 200-byte messages (xtp-load --rate), once for DURATION and
# once for 2 x DURATION seconds. Three tools, each on a fresh proxy:
#   - callgrind: counters are zeroed when every session is up (xtp-load --ready-file) and
#     dumped when the messages have drained (--done-file); xtp-load stays idle for 3 s around
#     the messages (--settle), so the profile holds the message phase only: instructions (Ir) per stanza, split by shared object (proxy, libmbed*, expat,
#     libc, libuv, the rest), and the calls per stanza to malloc/calloc/realloc/free and to the
#     memcpy/memmove family, with the proxy's own functions that cost the most;
#   - DHAT (heap mode): heap blocks and bytes allocated; run at N and 2N messages, the
#     difference divided by N is the cost per stanza, whatever the setup cost;
#   - DHAT (copy mode): bytes copied by memcpy/memmove/strcpy & co. called through the PLT (copies
#     inside libc itself, and small ones the compiler inlines, are not seen), again 2N minus N.
# A stanza is one message relayed in one direction; each message crosses the proxy twice (from
# the sender in, through TLS decryption, to jabberd2; back from jabberd2, through TLS
# encryption, to the receiver).
#
# Environment (defaults in brackets): XTP_BENCH_PORT_BASE [23310]: jabberd2 c2s on BASE+1, the
# proxy on BASE+3 (Direct TLS); XTP_BENCH_PAIRS [20]; XTP_BENCH_RATE [5] messages per second and
# session; XTP_BENCH_DURATION [4] seconds (the second run takes twice as long);
# XTP_BENCH_TLS [direct] or starttls; XTP_BENCH_TLS_LIB [openssl, else mbedtls]: the client's TLS
# library (it picks the cipher suite); XTP_BENCH_KEEP=1 keeps the work folder (the callgrind
# profiles: callgrind_annotate WORK/cg-1.out.* for the whole picture).
# Exit status 0, 1 when a run had errors (numbers still printed), 2 on bad usage or setup failure.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$SRC/bench/lib.sh"
DOMAIN=example.test
BASE=${XTP_BENCH_PORT_BASE:-23310}
PAIRS=${XTP_BENCH_PAIRS:-20}
RATE=${XTP_BENCH_RATE:-5}
DURATION=${XTP_BENCH_DURATION:-4}
TLSMODE=${XTP_BENCH_TLS:-direct}
CERTS=$SRC/tests/certs

die() {
    printf 'stanza-callgrind.sh: %s\n' "$*" >&2
    exit 2
}

[ $# -eq 1 ] || die "usage: bench/stanza-callgrind.sh BUILD_DIR"
[ -d "$1" ] || die "no build folder $1"
BUILD=$(cd "$1" && pwd)
PROXY=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
LOAD=$BUILD/bench/xtp-load
for f in "$PROXY" "$LOAD"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD)"
done
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
    die "valgrind (with callgrind_control) is needed: apt-get install valgrind"
for v in BASE PAIRS RATE DURATION; do
    case "${!v}" in
    '' | *[!0-9]*) die "$v must be a whole number, not '${!v}'" ;;
    esac
done
case "$TLSMODE" in direct | starttls) ;; *) die "XTP_BENCH_TLS must be direct or starttls" ;; esac
if grep -q 'asan\|ubsan' <<<"$(ldd "$PROXY" 2>/dev/null)"; then
    die "$PROXY is built with sanitizers; Valgrind needs a build without them"
fi
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range
[ $((BASE + 3)) -lt "$eph_lo" ] || [ $((BASE + 1)) -gt "$eph_hi" ] ||
    die "ports $((BASE + 1))-$((BASE + 3)) overlap the ephemeral range: set XTP_BENCH_PORT_BASE"
BACKEND_PORT=$((BASE + 1))
STARTTLS_PORT=$((BASE + 2))
DIRECT_PORT=$((BASE + 3))
PROXY_PORT=$DIRECT_PORT
[ "$TLSMODE" = direct ] || PROXY_PORT=$STARTTLS_PORT
SESSIONS=$((PAIRS * 2))
# The same client as bench/stanza.sh: OpenSSL when built in (it picks TLS_AES_256_GCM_SHA384).
TLS_LIB=${XTP_BENCH_TLS_LIB:-openssl}
"$LOAD" --help | grep -q 'or openssl' || TLS_LIB=mbedtls
for p in "$BACKEND_PORT" "$STARTTLS_PORT" "$DIRECT_PORT"; do
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || die "port $p is in use (set XTP_BENCH_PORT_BASE)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xtp-stanza-cg.XXXXXX")
PROXY_PID=
LOAD_PID=
RC=0
stop_proxy() {
    stop_pid "$PROXY_PID" 30 # Valgrind writes its output at exit: up to 30 s
    PROXY_PID=
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_pid "$LOAD_PID"
    stop_proxy
    "$SRC/scripts/jabberd2-local.sh" stop "$WORK/jabberd2" >/dev/null 2>&1
    if [ "$rc" -eq 0 ] && [ "${XTP_BENCH_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        printf 'stanza-callgrind.sh: work folder kept: %s\n' "$WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_file() { # wait_file FILE SECONDS
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        [ -f "$1" ] && return 0
        kill -0 "$LOAD_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

printf 'stanza-callgrind.sh: starting jabberd2 (%d users) in %s\n' "$SESSIONS" "$WORK" >&2
users=""
for ((i = 0; i < SESSIONS; i++)); do users="$users user$i:secret"; done
JABBERD2_USERS=$users "$SRC/scripts/jabberd2-local.sh" start "$WORK/jabberd2" "$DOMAIN" \
    "$BACKEND_PORT" >/dev/null || die "jabberd2 did not start"

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
limits: { max_stanza: 256KiB, handshake_timeout: 60s, max_connections: 1000 }
EOF

# measure NAME TOOL SECONDS: a fresh proxy under Valgrind TOOL, one xtp-load run of SECONDS.
measure() {
    local name=$1 tool=$2 secs=$3 rc=0 i vg
    case "$tool" in
    callgrind) vg=(--tool=callgrind --callgrind-out-file="$WORK/$name.out.%p") ;;
    dhat-heap) vg=(--tool=dhat --mode=heap --dhat-out-file="$WORK/$name.json") ;;
    dhat-copy) vg=(--tool=dhat --mode=copy --dhat-out-file="$WORK/$name.json") ;;
    esac
    valgrind "${vg[@]}" --log-file="$WORK/$name.vg.log" "$PROXY" -c "$WORK/proxy.yaml" \
        </dev/null 2>"$WORK/$name.proxy.log" &
    PROXY_PID=$!
    for ((i = 0; i < 600; i++)); do
        ss -Hltn "sport = :$PROXY_PORT" 2>/dev/null | grep -q . && break
        kill -0 "$PROXY_PID" 2>/dev/null || die "the proxy under $tool exited (see $WORK/$name.vg.log)"
        sleep 0.1
    done
    rm -f "$WORK/$name.ready" "$WORK/$name.done"
    "$LOAD" --domain "$DOMAIN" --mode "$TLSMODE" --port "$PROXY_PORT" --tls-lib "$TLS_LIB" \
        -n "$SESSIONS" -c 4 --login \
        --rate "$RATE" --duration "$secs" --timeout $((secs + 300)) --handshake-timeout 60 --settle 3 \
        --ready-file "$WORK/$name.ready" --done-file "$WORK/$name.done" \
        >"$WORK/$name.load" 2>"$WORK/$name.load.err" &
    LOAD_PID=$!
    if [ "$tool" = callgrind ]; then
        wait_file "$WORK/$name.ready" 240 && callgrind_control -z "$PROXY_PID" >/dev/null
        wait_file "$WORK/$name.done" $((secs + 60)) && callgrind_control -d "$PROXY_PID" >/dev/null
    fi
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=
    stop_proxy
    if [ "$rc" -ne 0 ]; then
        printf 'stanza-callgrind.sh: run %s exited with %d:\n' "$name" "$rc" >&2
        tail -n 5 "$WORK/$name.load.err" >&2
        RC=1
    fi
    grep -q '^RESULT ' "$WORK/$name.load" || die "run $name printed no result"
}

T0=$(date +%s)
for tool in callgrind dhat-heap dhat-copy; do
    for k in 1 2; do
        printf 'stanza-callgrind.sh: %s, %d s of messages\n' "$tool" $((DURATION * k)) >&2
        measure "$tool-$k" "$tool" $((DURATION * k))
    done
done
# the names: callgrind-1/2, dhat-heap-1/2, dhat-copy-1/2
msgs() { result msgs_rcvd "$WORK/$1.load"; }

printf '\nxmpp-tls-proxy stanza path under Valgrind (bench/stanza-callgrind.sh), %s\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')"
printf '%s; %s; %s\n' "$("$PROXY" --version | head -n 2 | tr '\n' ' ')" "$(valgrind --version)" \
    "$(basename "$BUILD")"
printf '%d logged-in sessions through the proxy (%s, client TLS %s: %s), %d pairs, %s msg/s per\n' \
    "$SESSIONS" "$TLSMODE" "$TLS_LIB" "$(result cipher "$WORK/callgrind-1.load")" "$PAIRS" "$RATE"
printf 'session, 200-byte messages; runs of %d and %d s; %d s in all\n' "$DURATION" $((DURATION * 2)) \
    $(($(date +%s) - T0))
printf 'a stanza = one message relayed in one direction (each message crosses the proxy twice)\n'

python3 - "$WORK" "$(msgs callgrind-1)" "$(msgs callgrind-2)" "$(msgs dhat-heap-1)" \
    "$(msgs dhat-heap-2)" "$(msgs dhat-copy-1)" "$(msgs dhat-copy-2)" "$(basename "$PROXY")" <<'EOF'
import glob, json, re, sys
from collections import defaultdict

work = sys.argv[1]
m_cg1, m_cg2, m_h1, m_h2, m_c1, m_c2 = (int(x or 0) for x in sys.argv[2:8])
proxy_bin = sys.argv[8]

def parse_callgrind(path):
    """Self Ir per (object, function) and call counts per called function, from the raw
    profile (name compression: '(id) name' once, '(id)' after)."""
    names = {"ob": {}, "fn": {}}
    selfc = defaultdict(int)
    calls = defaultdict(int)
    ob = fn = None
    cfn = None
    pending_call = False
    def name(kind, v):
        m = re.match(r"\((\d+)\)(?: (.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[kind][m.group(1)] = m.group(2)
        return names[kind].get(m.group(1), "?")
    total = 0
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        c = line[0]
        if c.isdigit() or c in "+-*":
            parts = line.split()
            cost = int(parts[1]) if len(parts) > 1 else 0
            if pending_call:
                pending_call = False  # inclusive cost of the call: not self cost
                continue
            selfc[(ob, fn)] += cost
            total += cost
            continue
        key, _, val = line.partition("=")
        if key == "ob":
            ob = name("ob", val)
        elif key == "fn":
            fn = name("fn", val)
        elif key == "cob":
            name("ob", val)
        elif key == "cfn":
            cfn = name("fn", val)
        elif key == "calls":
            calls[cfn] += int(val.split()[0])
            pending_call = True
    return total, selfc, calls

def group(obj):
    o = obj.rsplit("/", 1)[-1]
    if o == proxy_bin:
        return "proxy (xmpp-tls-proxy)"
    if o.startswith("libmbed"):
        return "mbedTLS (" + o.split(".so")[0] + ")"
    if o.startswith("libexpat"):
        return "expat"
    if o.startswith("libc.so") or o.startswith("libc-"):
        return "libc"
    if o.startswith("libuv"):
        return "libuv"
    if o.startswith("ld-linux"):
        return "ld.so (lazy binding)"
    return "other (" + o + ")"

HEAP = ("malloc", "calloc", "realloc", "free")
def copy_fn(f):
    return re.search(r"mem(cpy|move)|memcpy", f or "") is not None

res = []
for k, m in ((1, m_cg1), (2, m_cg2)):
    files = sorted(f for f in glob.glob(f"{work}/callgrind-{k}.out.*") if re.search(r"\.\d+\.\d+$", f))
    if not files or m == 0:
        print(f"callgrind run {k}: no dump (see {work})")
        sys.exit(1)
    res.append((m * 2,) + parse_callgrind(files[0]))

print("\ncallgrind, the message phase only (zeroed when all sessions were up, dumped when drained)")
(s1, t1, self1, calls1), (s2, t2, self2, calls2) = res
print(f"  run 1: {s1} stanzas, {t1:,} Ir = {t1 / s1:,.0f} Ir per stanza")
print(f"  run 2: {s2} stanzas, {t2:,} Ir = {t2 / s2:,.0f} Ir per stanza")
if s2 > s1:
    print(f"  run 2 minus run 1: {(t2 - t1) / (s2 - s1):,.0f} Ir per stanza")
by = defaultdict(int)
for (ob, fn), c in self2.items():
    by[group(ob or "?")] += c
print(f"\n  Ir per stanza by shared object (self cost, run 2):")
for g, c in sorted(by.items(), key=lambda x: -x[1]):
    print(f"    {g:40s} {c / s2:9,.0f}  {100 * c / t2:5.1f}%")
print(f"    {'total':40s} {t2 / s2:9,.0f}")

print("\n  calls per stanza: run 1 / run 2 / (run 2 minus run 1) per added stanza; a count that does")
print("  not grow with the stanzas is a one-time cost (e.g. expat growing a pool on first use)")
def row(f):
    a, b = calls1.get(f, 0), calls2.get(f, 0)
    d = (b - a) / (s2 - s1) if s2 > s1 else 0
    print(f"    {f:34s} {a / s1:7.3f} / {b / s2:7.3f} / {d:7.3f}   ({a} and {b} calls)")
for f in HEAP:
    row(f)
for f in sorted({k2 for k2 in list(calls1) + list(calls2) if copy_fn(k2)}):
    row(f)

top = sorted(((c, fn) for (ob, fn), c in self2.items() if group(ob or "?").startswith("proxy")),
             reverse=True)[:8]
print("\n  the proxy's own functions, self Ir per stanza (run 2):")
for c, fn in top:
    print(f"    {fn:40s} {c / s2:9,.0f}")
topall = sorted(((c, fn, group(ob or "?")) for (ob, fn), c in self2.items()), reverse=True)[:12]
print("\n  every object's top functions, self Ir per stanza (run 2):")
for c, fn, g in topall:
    print(f"    {fn[:48]:48s} {c / s2:9,.0f}  {g}")

def dhat(path):
    d = json.load(open(path))
    tb = sum(pp.get("tb", 0) for pp in d["pps"])
    tbk = sum(pp.get("tbk", 0) for pp in d["pps"])
    return tb, tbk, d

def callers(path):
    """Bytes and calls by the innermost frame outside libc and Valgrind's preload."""
    d = json.load(open(path))
    ftbl = d["ftbl"]
    where = defaultdict(lambda: [0, 0])
    for pp in d["pps"]:
        label = "?"
        for f in (ftbl[i] for i in pp["fs"][1:]):
            if "vgpreload" in f or "libc.so" in f:
                continue
            label = re.sub(r"^0x[0-9A-F]+: ", "", f)
            break
        where[label][0] += pp.get("tb", 0)
        where[label][1] += pp.get("tbk", 0)
    return where

def show_callers(what, p1, p2, ds):
    w1, w2 = callers(p1), callers(p2)
    rows = []
    for label in set(w1) | set(w2):
        b = w2.get(label, [0, 0])[0] - w1.get(label, [0, 0])[0]
        n = w2.get(label, [0, 0])[1] - w1.get(label, [0, 0])[1]
        if b or n:
            rows.append((b, n, label))
    print(f"  {what} per stanza by caller (run 2 minus run 1):")
    for b, n, label in sorted(rows, reverse=True)[:10]:
        print(f"    {b / ds:8.1f} B  {n / ds:6.2f} calls  {label[:90]}")

print("\nDHAT, the difference between the two runs (so setup and teardown cancel out)")
(hb1, hk1, _), (hb2, hk2, dh2) = dhat(f"{work}/dhat-heap-1.json"), dhat(f"{work}/dhat-heap-2.json")
ds = 2 * (m_h2 - m_h1)
if ds > 0:
    print(f"  heap:   {hk2 - hk1} blocks, {hb2 - hb1} bytes more for {ds} more stanzas = "
          f"{(hk2 - hk1) / ds:.3f} allocations and {(hb2 - hb1) / ds:.1f} bytes per stanza")
(cb1, ck1, _), (cb2, ck2, dc2) = dhat(f"{work}/dhat-copy-1.json"), dhat(f"{work}/dhat-copy-2.json")
ds = 2 * (m_c2 - m_c1)
if ds > 0:
    print(f"  copies: {ck2 - ck1} calls, {cb2 - cb1} bytes more for {ds} more stanzas = "
          f"{(ck2 - ck1) / ds:.2f} calls and {(cb2 - cb1) / ds:.0f} bytes per stanza")
    show_callers("copied bytes", f"{work}/dhat-copy-1.json", f"{work}/dhat-copy-2.json", ds)
ds = 2 * (m_h2 - m_h1)
if ds > 0 and hk2 - hk1 > 0:
    show_callers("allocated bytes", f"{work}/dhat-heap-1.json", f"{work}/dhat-heap-2.json", ds)
EOF
[ "$RC" -eq 0 ] || printf '\nstanza-callgrind.sh: some runs reported errors; numbers may be off\n' >&2
exit "$RC"
