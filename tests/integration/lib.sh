# shellcheck shell=bash
# lib.sh: the integration-test harness, sourced by tests/integration/tNN-*.sh (design.md §10).
#
# A test sources this file, starts what it needs, checks, and ends with `pass`, `fail MSG` or
# `skip MSG` (exit 0 / 1 / 77, as ctest's SKIP_RETURN_CODE expects). Each test gets a private
# folder $T (mktemp -d); an EXIT trap stops every process the test started (proxy, jabberd2,
# background clients) and removes $T, unless the test failed: then it prints the proxy log and
# the jabberd2 logs and keeps $T for a look.
#
# Environment (ctest sets the first three; the defaults suit a run by hand from the source tree):
#   XTP_SRC    source tree (default: two folders above this file)
#   XTP_BUILD  build tree (default: $XTP_SRC/build/test)
#   XTP_BIN    the proxy binary (default: $XTP_SRC/build/test/xmpp-tls-proxy)
#   XTP_CERTS  test certificates: ca.crt, example.test.crt, example.test.key
#              (default: $XTP_SRC/tests/certs)
#   XTP_KEEP=1 keep $T even when the test passes
# Proxy config knobs read by write_proxy_config: LOG_LEVEL (debug), TLS_MIN_VERSION (1.2),
# MAX_STANZA (64KiB), HANDSHAKE_TIMEOUT (10s), MAX_CONNECTIONS (1000), DRAIN_TIMEOUT (0s: SIGTERM
# ends sessions at once, as the tests' stop_proxy expects).
#
# s2s tests: start_dnsmasq, start_jabberd2_s2s, start_prosody, start_tap, s2s_chat (the section
# "s2s" below; docs/testing-s2s.md shows a whole test).
#
# Every wait is bounded; nothing here waits for a process or a port without a deadline.

set -euo pipefail

LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
XTP_SRC=${XTP_SRC:-$(cd "$LIB_DIR/../.." && pwd)}
XTP_BUILD=${XTP_BUILD:-$XTP_SRC/build/test}
XTP_BIN=${XTP_BIN:-$XTP_SRC/build/test/xmpp-tls-proxy}
XTP_CERTS=${XTP_CERTS:-$XTP_SRC/tests/certs}
PY=/usr/bin/python3 # Debian's python3-slixmpp lives here, whatever python3 is first in PATH
JABBERD2_LOCAL=$XTP_SRC/scripts/jabberd2-local.sh

DOMAIN=example.test
CA=$XTP_CERTS/ca.crt
CERT=$XTP_CERTS/$DOMAIN.crt
KEY=$XTP_CERTS/$DOMAIN.key
NS_STREAMS=http://etherx.jabber.org/streams
NS_TLS=urn:ietf:params:xml:ns:xmpp-tls
# shellcheck disable=SC2034 # used by the tests that source this file
STARTTLS="<starttls xmlns='$NS_TLS'/>"

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/xtp-$TEST_NAME.XXXXXX")
PROXY_LOG=$T/proxy.log
PROXY_PID=
PROXY_VERDICT=
JABBERD2_DIR=
JABBERD2_STARTS=0
JABBERD2_MARK=0
_LIB_DIRS=()  # every jabberd2 folder started, for the cleanup
_LIB_BG=()    # background helpers (clients, dnsmasq, taps) to kill on exit
_LIB_PROSODY_DIRS=() # every Prosody folder started, for the cleanup
PROSODY_LOCAL=$XTP_SRC/scripts/prosody-local.sh
DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
PROSODY_DIR=
PROSODY_STARTS=0
DNSMASQ_PID=
DNSMASQ_STARTS=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*"; }
fail() {
    printf '[%s] FAIL: %s\n' "$TEST_NAME" "$*"
    exit 1
}
skip() {
    printf '[%s] SKIP: %s\n' "$TEST_NAME" "$*"
    exit 77
}
pass() {
    printf '[%s] PASS\n' "$TEST_NAME"
    exit 0
}

# stop_pid PID [SECONDS]: SIGTERM, SIGKILL after SECONDS (default 3), reaps it if it is our
# child. Sets STOP_STATUS (its exit status; 137 when it needed SIGKILL) and STOP_KILLED (0/1).
stop_pid() {
    local pid=$1 secs=${2:-3} i
    STOP_STATUS=0 STOP_KILLED=0
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || STOP_STATUS=$?
        return 0
    }
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
        STOP_KILLED=1
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || STOP_STATUS=$?
}

# _lib_proxy_verdict: after the proxy stopped, a reason to fail a passing test, or nothing: it
# must leave within 5 s of SIGTERM (graceful drain), exit 0, and its log must hold no sanitizer
# report (ASan/UBSan/LSan builds).
_lib_proxy_verdict() {
    if [ "$STOP_KILLED" = 1 ]; then
        echo "the proxy did not exit within 5 s of SIGTERM"
    elif [ "$STOP_STATUS" != 0 ]; then
        echo "the proxy exited with status $STOP_STATUS after SIGTERM"
    elif grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$PROXY_LOG" 2>/dev/null; then
        echo "sanitizer report in the proxy log"
    fi
}

_lib_dump() {
    local f
    printf '[%s] logs kept in %s\n' "$TEST_NAME" "$T"
    if [ -f "$PROXY_LOG" ]; then
        printf -- '----- proxy log (%s, last 200 lines)\n' "$PROXY_LOG"
        tail -n 200 "$PROXY_LOG"
    fi
    for d in "${_LIB_DIRS[@]}"; do
        for f in "$d"/c2s.log "$d"/sm.log "$d"/router.log "$d"/s2s.log; do
            [ -f "$f" ] || continue
            printf -- '----- %s (last 60 lines, start-up chatter left out)\n' "$f"
            grep -Ev "added to chain|PRAGMA|-- ANALYZE|^[[:space:]]*$" "$f" | tail -n 60
        done
    done
    for d in "${_LIB_PROSODY_DIRS[@]}"; do
        [ -f "$d/prosody.log" ] || continue
        printf -- '----- %s (last 80 lines)\n' "$d/prosody.log"
        tail -n 80 "$d/prosody.log"
    done
    for f in "$T"/*.out "$T"/dnsmasq.*.log "$T"/tap-*.log; do
        [ -f "$f" ] || continue
        printf -- '----- %s (last 40 lines)\n' "$f"
        tail -n 40 "$f"
    done
}

_lib_cleanup() {
    local rc=$? pid d
    set +e
    trap - EXIT INT TERM
    for pid in "${_LIB_BG[@]}"; do stop_pid "$pid" 1; done
    if [ -n "$PROXY_PID" ]; then
        stop_pid "$PROXY_PID" 5
        PROXY_VERDICT=$(_lib_proxy_verdict)
    fi
    if [ "$rc" = 0 ] && [ -n "${PROXY_VERDICT:-}" ]; then
        printf '[%s] FAIL (at shutdown): %s\n' "$TEST_NAME" "$PROXY_VERDICT"
        rc=1
    fi
    for d in "${_LIB_DIRS[@]}"; do "$JABBERD2_LOCAL" stop "$d" >/dev/null; done
    for d in "${_LIB_PROSODY_DIRS[@]}"; do "$PROSODY_LOCAL" stop "$d" >/dev/null; done
    if [ "$rc" = 0 ] || [ "$rc" = 77 ]; then
        if [ "${XTP_KEEP:-0}" = 1 ]; then
            printf '[%s] kept %s\n' "$TEST_NAME" "$T"
        else
            rm -rf "$T"
        fi
    else
        _lib_dump
    fi
    exit "$rc"
}
trap _lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg CMD...: runs CMD in the background (killed on exit); its pid is in $BG_PID.
bg() {
    "$@" &
    BG_PID=$!
    _LIB_BG+=("$BG_PID")
}

# free_port: a loopback port nobody listens on right now.
free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# port_listening PORT: a socket listens on TCP PORT. Asks the kernel (ss) rather than
# connecting, so that the proxy does not log a session for the probe.
port_listening() {
    if command -v ss >/dev/null; then
        [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
    else
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}

# wait_port PORT [TIMEOUT]: until something listens on PORT (default 10 s); 1 if not.
wait_port() {
    local port=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 10; i++)); do
        port_listening "$port" && return 0
        sleep 0.1
    done
    return 1
}

# wait_until SECONDS CMD...: polls CMD every 0.1 s until it succeeds; 1 after SECONDS.
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    "$@"
}

need_cmd() {
    local c
    for c in "$@"; do command -v "$c" >/dev/null || skip "$c not installed (scripts/deps.sh test)"; done
}

need_certs() {
    local f
    for f in "$CA" "$CERT" "$KEY"; do [ -r "$f" ] || fail "test certificate missing: $f"; done
}

# ---- jabberd2 --------------------------------------------------------------------------------

# start_jabberd2 DOMAIN [C2S_PORT]: a private jabberd2 (users alice/secret, bob/secret) in a new
# folder under $T; exports BACKEND_C2S_PORT and JABBERD2_DIR. Connection counting starts now.
start_jabberd2() {
    local domain=$1 port=${2:-}
    [ -x /usr/sbin/jabberd2-c2s ] || skip "jabberd2 not installed (scripts/deps.sh test)"
    need_cmd sqlite3
    [ -n "$port" ] || port=$(free_port)
    JABBERD2_STARTS=$((JABBERD2_STARTS + 1))
    JABBERD2_DIR=$T/jabberd2.$JABBERD2_STARTS
    _LIB_DIRS+=("$JABBERD2_DIR")
    "$JABBERD2_LOCAL" start "$JABBERD2_DIR" "$domain" "$port" >/dev/null ||
        fail "jabberd2 did not start (see above)"
    export BACKEND_C2S_PORT=$port JABBERD2_DIR
    jabberd2_mark
}

stop_jabberd2() {
    [ -n "$JABBERD2_DIR" ] || return 0
    "$JABBERD2_LOCAL" stop "$JABBERD2_DIR" >/dev/null
}

# jabberd2_pid NAME: pid of jabberd2-NAME (router, sm, c2s) of the current instance.
jabberd2_pid() {
    awk -v n="$1" '$1 == n { print $2 }' "$JABBERD2_DIR/pids"
}

# jabberd2_mark: from now on the jabberd2_* counters below look only at c2s log lines written
# after this call (start_jabberd2 calls it, so its own readiness probe is not counted).
jabberd2_mark() {
    JABBERD2_MARK=$(wc -l <"$JABBERD2_DIR/c2s.log")
}

# _jabberd2_new: the c2s log lines written since jabberd2_mark.
_jabberd2_new() {
    tail -n +"$((JABBERD2_MARK + 1))" "$JABBERD2_DIR/c2s.log"
}

# jabberd2_connects: connections jabberd2's c2s accepted since the mark (its
# "[FD] [IP, port=N] connect" lines, logged for every accepted connection).
jabberd2_connects() {
    _jabberd2_new | grep -c '\] connect$' || true
}

# jabberd2_disconnects: connections c2s has closed since the mark.
jabberd2_disconnects() {
    _jabberd2_new | grep -c '\] disconnect jid=' || true
}

# jabberd2_wait_disconnects N [TIMEOUT]: until c2s logged N disconnects since the mark.
jabberd2_wait_disconnects() {
    local n=$1 secs=${2:-5} i
    for ((i = 0; i < secs * 10; i++)); do
        [ "$(jabberd2_disconnects)" -ge "$n" ] && return 0
        sleep 0.1
    done
    [ "$(jabberd2_disconnects)" -ge "$n" ]
}

# jabberd2_packets / jabberd2_bytes_max: over the connections closed since the mark, the
# stanzas c2s processed (sum) and the most bytes c2s read on one connection. Both come from
# c2s's "disconnect jid=..., packets: P, bytes: B" lines; B counts bytes received.
jabberd2_packets() {
    _jabberd2_new | sed -n 's/.*\] disconnect jid=.*, packets: \([0-9]*\), bytes: [0-9]*$/\1/p' |
        awk '{ s += $1 } END { print s + 0 }'
}
jabberd2_bytes_max() {
    _jabberd2_new | sed -n 's/.*\] disconnect jid=.*, packets: [0-9]*, bytes: \([0-9]*\)$/\1/p' |
        awk '$1 > m { m = $1 } END { print m + 0 }'
}

# jabberd2_log_has REGEX: an extended regex matches a c2s log line written since the mark.
jabberd2_log_has() {
    _jabberd2_new | grep -Eq -- "$1"
}

# ---- s2s: test DNS, jabberd2 with s2s, Prosody, taps (docs/testing-s2s.md) -----------------

# free_dns_port: a loopback port free for both TCP and UDP right now (dnsmasq binds both).
free_dns_port() {
    "$PY" - <<'PYEOF'
import socket, sys
for _ in range(100):
    t = socket.socket()
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        u.close()
        t.close()
    print(port)
    sys.exit(0)
sys.exit("no port free for both TCP and UDP")
PYEOF
}

# dns_xmpp_server DOMAIN PORT [TARGET]: the dnsmasq arguments that make DOMAIN's s2s service
# (_xmpp-server._tcp.DOMAIN SRV, priority 0, weight 0) point to TARGET:PORT, and TARGET (default
# xmpp.DOMAIN) resolve to 127.0.0.1. For start_dnsmasq's argument list: the words contain no
# spaces, so $(dns_xmpp_server ...) unquoted is safe. Other records: pass dnsmasq options
# yourself, e.g. --srv-host=_xmpps-server._tcp.D,T,PORT (Direct TLS), --srv-host=_xmpp-server._tcp.D
# (no target: "no service", the "." target of RFC 2782), --host-record=NAME,IP.
dns_xmpp_server() {
    local target=${3:-xmpp.$1}
    printf '%s\n' "--srv-host=_xmpp-server._tcp.$1,$target,$2" "--host-record=$target,127.0.0.1"
}

# start_dnsmasq PORT [DNSMASQ_ARGS...]: a private DNS server on 127.0.0.1:PORT (UDP and TCP;
# empty or 0 = a free port) answering only from its arguments: --conf-file=/dev/null --no-resolv
# --no-hosts (no upstream, no /etc/hosts), --local=/test/ (names under .test that are not
# configured get NXDOMAIN/NODATA at once, never REFUSED), everything else REFUSED. Queries are
# logged to $T/dnsmasq.N.log (DNSMASQ_LOG), the pid file is $T/dnsmasq.N.pid; it runs in the
# foreground under bg, so the EXIT trap stops it. Exports DNS_PORT; start_jabberd2_s2s and
# start_prosody point their resolvers at it. Restarting on the same port (stop_dnsmasq, then
# start_dnsmasq "$DNS_PORT" ...) changes the records; mind the servers' DNS caches
# (jabberd2 keeps answers at least lookup/min-ttl = 30 s).
start_dnsmasq() {
    local port=${1:-} i
    shift || true
    [ -x "$DNSMASQ" ] || skip "dnsmasq not installed (scripts/deps.sh test: dnsmasq-base)"
    need_cmd ss
    if [ -z "$port" ] || [ "$port" = 0 ]; then port=$(free_dns_port); fi
    DNSMASQ_STARTS=$((DNSMASQ_STARTS + 1))
    DNSMASQ_LOG=$T/dnsmasq.$DNSMASQ_STARTS.log
    bg "$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --port="$port" --listen-address=127.0.0.1 --bind-interfaces --local=/test/ \
        --log-queries --log-facility="$DNSMASQ_LOG" --pid-file="$T/dnsmasq.$DNSMASQ_STARTS.pid" \
        --user="$(id -un)" --group="$(id -gn)" "$@" </dev/null >>"$DNSMASQ_LOG" 2>&1
    DNSMASQ_PID=$BG_PID
    for ((i = 0; i < 50; i++)); do
        if [ -n "$(ss -Hlun "src 127.0.0.1 and sport = :$port" 2>/dev/null)" ] &&
            [ -n "$(ss -Hltn "src 127.0.0.1 and sport = :$port" 2>/dev/null)" ]; then
            export DNS_PORT=$port DNSMASQ_LOG
            return 0
        fi
        kill -0 "$DNSMASQ_PID" 2>/dev/null || fail "dnsmasq exited at start-up: $(tail -n 5 "$DNSMASQ_LOG")"
        sleep 0.1
    done
    fail "dnsmasq does not listen on 127.0.0.1:$port after 5 s"
}

stop_dnsmasq() {
    stop_pid "$DNSMASQ_PID" 3
    DNSMASQ_PID=
}

# dns_queries REGEX: how many queries dnsmasq logged (all its runs) whose line matches REGEX,
# e.g. dns_queries 'query\[SRV\] _xmpp-server._tcp.other.test'.
dns_queries() {
    cat "$T"/dnsmasq.*.log 2>/dev/null | grep -Ec -- "$1" || true
}

# start_jabberd2_s2s DOMAIN [C2S_PORT] [S2S_PORT]: like start_jabberd2, with jabberd2's s2s
# component on S2S_PORT (default a free port) and its resolver asking 127.0.0.1:$DNS_PORT
# (start_dnsmasq first; without DNS_PORT it asks 127.0.0.1:53). Exports BACKEND_C2S_PORT,
# BACKEND_S2S_PORT, JABBERD2_DIR; the dialback secret is in $JABBERD2_DIR/s2s-secret. The
# JABBERD2_S2S_SECRET and JABBERD2_S2S_SET variables (scripts/jabberd2-local.sh) pass through.
# Log counting (jabberd2_mark, jabberd2_s2s_mark) starts now.
start_jabberd2_s2s() {
    local domain=$1 port=${2:-} s2s_port=${3:-}
    [ -x /usr/sbin/jabberd2-s2s ] || skip "jabberd2 not installed (scripts/deps.sh test)"
    need_cmd sqlite3 ss
    [ -n "$port" ] || port=$(free_port)
    [ -n "$s2s_port" ] || s2s_port=$(free_port)
    JABBERD2_STARTS=$((JABBERD2_STARTS + 1))
    JABBERD2_DIR=$T/jabberd2.$JABBERD2_STARTS
    _LIB_DIRS+=("$JABBERD2_DIR")
    JABBERD2_S2S_DNS=127.0.0.1:${DNS_PORT:-53} \
        "$JABBERD2_LOCAL" start "$JABBERD2_DIR" "$domain" "$port" "$s2s_port" >/dev/null ||
        fail "jabberd2 (with s2s) did not start (see above)"
    export BACKEND_C2S_PORT=$port BACKEND_S2S_PORT=$s2s_port JABBERD2_DIR
    jabberd2_mark
    jabberd2_s2s_mark
}

# jabberd2_s2s_mark / jabberd2_s2s_log_new: s2s.log lines written after the mark. s2s logs
# "[FD] [IP, port=N] incoming connection" per accepted connection, "[FD] [IP, port=N] outgoing
# connection for 'DOMAIN'" per connection it opens, and its dialback verdicts.
jabberd2_s2s_mark() {
    JABBERD2_S2S_MARK=$(wc -l <"$JABBERD2_DIR/s2s.log")
}
jabberd2_s2s_log_new() {
    tail -n +"$((${JABBERD2_S2S_MARK:-0} + 1))" "$JABBERD2_DIR/s2s.log"
}

# jabberd2_s2s_log_has REGEX: an extended regex matches an s2s.log line written since the mark.
jabberd2_s2s_log_has() {
    jabberd2_s2s_log_new | grep -Eq -- "$1"
}

# jabberd2_s2s_log_count REGEX: how many s2s.log lines since the mark match.
jabberd2_s2s_log_count() {
    jabberd2_s2s_log_new | grep -Ec -- "$1" || true
}

# wait_jabberd2_s2s_log REGEX [TIMEOUT]: until such a line appears (default 5 s).
wait_jabberd2_s2s_log() {
    wait_until "${2:-5}" jabberd2_s2s_log_has "$1"
}

# start_prosody DOMAIN [plain|tls] [C2S_PORT] [S2S_PORT]: a private Prosody 0.12
# (scripts/prosody-local.sh; users alice/secret and bob/secret unless PROSODY_USERS) in a new
# folder under $T, its outbound s2s resolved through 127.0.0.1:$DNS_PORT (start_dnsmasq first).
# plain: no TLS anywhere, dialback; tls: certificate $XTP_CERTS/DOMAIN.crt, only $CA trusted,
# s2s_require_encryption and s2s_secure_auth. PROSODY_EXTRA, PROSODY_HOST_EXTRA,
# PROSODY_MODULES, PROSODY_S2S_DIRECT_PORT and PROSODY_LOG_LEVEL pass through. Exports
# PROSODY_DIR, PROSODY_C2S_PORT, PROSODY_S2S_PORT, PROSODY_LOG. Log counting starts now.
start_prosody() {
    local domain=$1 mode=${2:-plain} port=${3:-} s2s_port=${4:-}
    [ -x /usr/bin/prosody ] || skip "prosody not installed (scripts/deps.sh test)"
    need_cmd ss
    [ -n "$port" ] || port=$(free_port)
    [ -n "$s2s_port" ] || s2s_port=$(free_port)
    PROSODY_STARTS=$((PROSODY_STARTS + 1))
    PROSODY_DIR=$T/prosody.$PROSODY_STARTS
    _LIB_PROSODY_DIRS+=("$PROSODY_DIR")
    PROSODY_DNS=127.0.0.1:${DNS_PORT:-53} PROSODY_CERTS=$XTP_CERTS \
        "$PROSODY_LOCAL" start "$PROSODY_DIR" "$domain" "$port" "$s2s_port" "$mode" >/dev/null ||
        fail "prosody did not start (see above)"
    export PROSODY_DIR PROSODY_C2S_PORT=$port PROSODY_S2S_PORT=$s2s_port
    export PROSODY_LOG=$PROSODY_DIR/prosody.log
    prosody_mark
}

stop_prosody() {
    [ -n "$PROSODY_DIR" ] || return 0
    "$PROSODY_LOCAL" stop "$PROSODY_DIR" >/dev/null
}

# prosody_mark / prosody_log_new / prosody_log_has REGEX / prosody_log_count REGEX /
# wait_prosody_log REGEX [TIMEOUT]: Prosody's log since the mark (debug level by default).
prosody_mark() {
    PROSODY_MARK=$(wc -l <"$PROSODY_LOG")
}
prosody_log_new() {
    tail -n +"$((${PROSODY_MARK:-0} + 1))" "$PROSODY_LOG"
}
prosody_log_has() {
    prosody_log_new | grep -Eq -- "$1"
}
prosody_log_count() {
    prosody_log_new | grep -Ec -- "$1" || true
}
wait_prosody_log() {
    wait_until "${2:-5}" prosody_log_has "$1"
}

# start_tap NAME PORT [TAP_ARGS...]: tests/integration/tap.py relaying a new free port to
# 127.0.0.1:PORT, logging every chunk both ways to $T/tap-NAME.log (format: tap.py --help).
# Exports TAP_PORT (where to connect) and TAP_LOG; the EXIT trap stops it.
start_tap() {
    local name=$1 port=$2 i
    shift 2
    rm -f "$T/tap-$name.port"
    bg "$PY" "$LIB_DIR/tap.py" --listen 127.0.0.1:0 --connect "127.0.0.1:$port" \
        --log "$T/tap-$name.log" --port-file "$T/tap-$name.port" "$@"
    for ((i = 0; i < 50; i++)); do
        if [ -s "$T/tap-$name.port" ]; then
            TAP_PORT=$(cat "$T/tap-$name.port")
            TAP_LOG=$T/tap-$name.log
            export TAP_PORT TAP_LOG
            return 0
        fi
        kill -0 "$BG_PID" 2>/dev/null || fail "tap $name exited at start-up"
        sleep 0.1
    done
    fail "tap $name did not listen after 5 s"
}

# tap_log_has NAME REGEX: an extended regex matches a line of tap NAME's log.
tap_log_has() {
    grep -Eq -- "$2" "$T/tap-$1.log" 2>/dev/null
}

# s2s_chat ARGS...: tests/integration/s2s_chat.py with --ca filled in, e.g.
#   s2s_chat --a alice@example.test --a-addr 127.0.0.1:$BACKEND_C2S_PORT \
#            --b bob@other.test --b-addr 127.0.0.1:$PROSODY_C2S_PORT --count 5
# Exit status: 0 all messages arrived in order, 1 a login failed, 3 messages missing/bounced.
s2s_chat() {
    "$PY" "$LIB_DIR/s2s_chat.py" --ca "$CA" "$@"
}

# ---- the proxy -------------------------------------------------------------------------------

# write_proxy_config FILE: c2s STARTTLS and Direct TLS listeners on free ports (exported as
# PROXY_STARTTLS_PORT / PROXY_DIRECT_PORT unless already set), backend = $BACKEND_C2S_PORT.
write_proxy_config() {
    local file=$1
    need_certs
    [ -n "${BACKEND_C2S_PORT:-}" ] || BACKEND_C2S_PORT=$(free_port) # a port nobody listens on
    : "${PROXY_STARTTLS_PORT:=$(free_port)}"
    : "${PROXY_DIRECT_PORT:=$(free_port)}"
    export PROXY_STARTTLS_PORT PROXY_DIRECT_PORT BACKEND_C2S_PORT
    cat >"$file" <<EOF
log: { level: ${LOG_LEVEL:-debug} }
tls: { min_version: "${TLS_MIN_VERSION:-1.2}" }
domains:
  $DOMAIN:
    cert: $CERT
    key: $KEY
    backend: { c2s: "127.0.0.1:$BACKEND_C2S_PORT" }
listeners:
  - { name: c2s, listen: "127.0.0.1:$PROXY_STARTTLS_PORT", kind: c2s, tls: starttls }
  - { name: c2s-direct, listen: "127.0.0.1:$PROXY_DIRECT_PORT", kind: c2s, tls: direct }
limits:
  max_stanza: ${MAX_STANZA:-64KiB}
  handshake_timeout: ${HANDSHAKE_TIMEOUT:-10s}
  max_connections: ${MAX_CONNECTIONS:-1000}
  drain_timeout: ${DRAIN_TIMEOUT:-0s}
EOF
}

# start_proxy CONFIG: runs "$XTP_BIN -c CONFIG" in the background (stdout and stderr to
# $PROXY_LOG) and waits for both listeners. Skips the test when the binary is not built.
start_proxy() {
    local config=$1
    [ -x "$XTP_BIN" ] || skip "proxy binary not built: $XTP_BIN"
    "$XTP_BIN" -c "$config" </dev/null >>"$PROXY_LOG" 2>&1 &
    PROXY_PID=$!
    local p
    for p in "$PROXY_STARTTLS_PORT" "$PROXY_DIRECT_PORT"; do
        if ! wait_port "$p" 10; then
            kill -0 "$PROXY_PID" 2>/dev/null || fail "the proxy exited at start-up (see its log)"
            fail "the proxy does not listen on 127.0.0.1:$p after 10 s"
        fi
    done
    kill -0 "$PROXY_PID" 2>/dev/null || fail "the proxy exited at start-up"
}

# proxy_alive: the proxy process is still running (not crashed).
proxy_alive() {
    kill -0 "$PROXY_PID" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$PROXY_PID/status" 2>/dev/null
}

# stop_proxy: SIGTERM and wait; a slow or unclean exit fails the test at its end.
stop_proxy() {
    stop_pid "$PROXY_PID" 5
    PROXY_VERDICT=$(_lib_proxy_verdict)
    PROXY_PID=
}

# proxy_log_has REGEX: an extended regex matches a line of the proxy log.
proxy_log_has() {
    grep -Eq -- "$1" "$PROXY_LOG"
}

# proxy_log_count REGEX: how many lines of the proxy log match.
proxy_log_count() {
    grep -Ec -- "$1" "$PROXY_LOG" || true
}

# wait_proxy_log REGEX [TIMEOUT]: the proxy logs after the client sees the effect; poll a bit.
wait_proxy_log() {
    wait_until "${2:-5}" proxy_log_has "$1"
}

# proxy_mark / proxy_log_new: look only at what the proxy logged after the mark.
proxy_mark() {
    PROXY_LOG_MARK=$(wc -l <"$PROXY_LOG")
}
proxy_log_new() {
    tail -n +"$((${PROXY_LOG_MARK:-0} + 1))" "$PROXY_LOG"
}

# The proxy's per-session lines (design.md §9): every line of a session carries "conn=ID" and
# "listener=NAME"; one INFO line when it opens, one when it closes (end reason, bytes,
# duration), and the TLS version and suite must appear on one of them.
PROXY_OPEN_RE=${PROXY_OPEN_RE:-' open( |$)'}
PROXY_CLOSE_RE=${PROXY_CLOSE_RE:-' close reason='}
PROXY_TLS_RE=${PROXY_TLS_RE:-'TLS ?v?1\.[23]'}
PROXY_CIPHER_RE=${PROXY_CIPHER_RE:-'(TLS1-3-[A-Z0-9-]+|TLS[-_][A-Z0-9_-]+|ECDHE-[A-Z0-9-]+|CHACHA20[A-Z0-9_-]*)'}

# check_proxy_sessions N LISTENER: exactly N sessions on LISTENER in the proxy log since
# proxy_mark, each with exactly one open and one close line, and the TLS version and cipher
# suite on its open or close line. Prints the lines it judged; returns 1 with a reason.
check_proxy_sessions() {
    proxy_log_new | "$PY" -c '
import re, sys
n, lst, open_re, close_re, tls_re, cipher_re = sys.argv[1:7]
sessions = {}
for line in sys.stdin:
    m = re.search(r"\bconn=(\d+)\b", line)
    if not m or not re.search(r"\blistener=" + re.escape(lst) + r"(\s|$)", line):
        continue
    s = sessions.setdefault(m.group(1), {"open": [], "close": []})
    if re.search(close_re, line):
        s["close"].append(line.rstrip())
    elif re.search(open_re, line):
        s["open"].append(line.rstrip())
bad = []
if len(sessions) != int(n):
    bad.append(f"{len(sessions)} sessions on listener {lst}, expected {n}")
for cid, s in sessions.items():
    for kind in ("open", "close"):
        if len(s[kind]) != 1:
            bad.append(f"conn={cid}: {len(s[kind])} {kind} lines, expected 1")
    both = " ".join(s["open"] + s["close"])
    if not re.search(tls_re, both) or not re.search(cipher_re, both):
        bad.append(f"conn={cid}: no TLS version and cipher suite on its open/close lines")
    for line in s["open"] + s["close"]:
        print("  " + line)
for b in bad:
    print("check_proxy_sessions: " + b)
sys.exit(1 if bad else 0)
' "$1" "$2" "$PROXY_OPEN_RE" "$PROXY_CLOSE_RE" "$PROXY_TLS_RE" "$PROXY_CIPHER_RE"
}

# ---- clients -----------------------------------------------------------------------------------

# stream_header [TO] [CONTENT_NS] [VERSION]: an opening stream header as a client writes it.
# An empty VERSION leaves the attribute out.
stream_header() {
    local to=${1:-$DOMAIN} ns=${2:-jabber:client} ver=${3-1.0}
    # shellcheck disable=SC2016 # the single quotes are XML's, inside double quotes
    printf "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='%s' to='%s'%s>" \
        "$ns" "$NS_STREAMS" "$to" "${ver:+ version='$ver'}"
}

# raw ARGS...: tests/integration/rawxmpp.py with --ca and --domain filled in.
raw() {
    "$PY" "$LIB_DIR/rawxmpp.py" --ca "$CA" --domain "$DOMAIN" "$@"
}

# xmpp_client MODE PORT: alice and bob log in through the proxy and exchange a message.
xmpp_client() {
    "$PY" "$LIB_DIR/xmpp_client.py" --mode "$1" --host 127.0.0.1 --port "$2" --ca "$CA" \
        --domain "$DOMAIN"
}

# s_client OUT ARGS...: openssl s_client against the proxy with ARGS (add -connect etc.), stdin
# closed so that it leaves right after the handshake; output in OUT; its exit status.
s_client() {
    local out=$1
    shift
    need_cmd openssl timeout
    timeout 20 openssl s_client "$@" </dev/null >"$out" 2>&1
}
