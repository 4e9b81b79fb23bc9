#!/bin/bash
# t22-slow-and-half-open: clients that take forever. Slowloris at 1 byte/s before TLS (the
# stream header), during the handshake (the ClientHello, over Direct TLS and after <proceed/>)
# and inside TLS (the stream header, one record per byte): limits.handshake_timeout (3 s here)
# ends each one, counted from accept, with <connection-timeout/> where a stream is open and one
# close line reason=timeout. Then 5,000 half-open connections (silent, a TLS record header that
# never completes, half a stream header) on both listeners at once: all are closed within the
# timeout plus a margin, each with one close line, the proxy's memory per connection is
# bounded and a second wave grows it no further (no leak), and a logged-in session keeps
# answering within 5 s throughout. Neither backend sees any of these connections.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"

HALF_OPEN=${HALF_OPEN:-5000}
ulimit -n $((2 * HALF_OPEN + 1000)) 2>/dev/null || skip "cannot raise the open-files limit to $((2 * HALF_OPEN + 1000))"
LOG_LEVEL=info HANDSHAKE_TIMEOUT=3s MAX_CONNECTIONS=$((HALF_OPEN + 100)) attack_setup direct

# 1. Slowloris: each is closed 3 s after accept (2.5-5 s allows for the loaded CI machine).
slow() { # PHASE PORT [CONDITION]
    local phase=$1 port=$2 cond=${3:-} out=$T/slow-$1.out
    attack_mark
    "$PY" "$LIB_DIR/slowloris.py" --phase "$phase" --port "$port" --ca "$CA" --domain "$ORG" \
        --rate 1 --max-seconds 10 --expect-between 2.5 5 ${cond:+--expect-stream-error "$cond"} \
        >"$out" 2>&1 || {
        cat "$out"
        fail "slowloris $phase: not ended by handshake_timeout"
    }
    expect_closes 1 timeout 'limits\.handshake_timeout=3000ms'
    log "$(head -1 "$out")"
}
slow plain "$PROXY_STARTTLS_PORT" connection-timeout
slow hello "$PROXY_DIRECT_PORT"
slow hello-starttls "$PROXY_STARTTLS_PORT"
slow tls-header "$PROXY_DIRECT_PORT" connection-timeout
[ "$(recorder_conns)" = 0 ] || fail "slowloris reached the backend: $(recorder_conns) connections"

# 2. Half-open connections, two waves. A session costs what its parser and TLS context take;
# the bound per connection (96 KiB) leaves room for ASan's redzones around them.
wave() { # N
    local out=$T/halfopen-$1.out peak
    rm -f "$T/halfopen.ready"
    attack_mark
    bg "$PY" "$LIB_DIR/connflood.py" hold --count "$HALF_OPEN" \
        --target "$PROXY_DIRECT_PORT:silent" --target "$PROXY_DIRECT_PORT:tls5" \
        --target "$PROXY_STARTTLS_PORT:silent" --target "$PROXY_STARTTLS_PORT:xml" \
        --ready "$T/halfopen.ready" --expect-closed-within 12 >"$out" 2>&1
    local pid=$BG_PID
    wait_until 30 test -e "$T/halfopen.ready" || fail "wave $1: the connections were not made"
    sleep 1 # the proxy has accepted them all by now (3 s timeout, so none is closed yet)
    peak=$(rss_kib)
    wait "$pid" || {
        cat "$out"
        fail "wave $1: the half-open connections were not all closed in time"
    }
    log "wave $1: $(cat "$out"); RSS at the peak $peak KiB"
    expect_closes "$HALF_OPEN" timeout
    eval "peak$1=\$peak"
}
rss0=$(rss_kib)
wave 1
# shellcheck disable=SC2154 # set by wave through eval
per=$(((peak1 - rss0) / HALF_OPEN))
[ "$per" -le 96 ] || fail "$HALF_OPEN half-open connections cost $per KiB each (allowed 96)"
log "$HALF_OPEN half-open connections: $((peak1 - rss0)) KiB, $per KiB each"
wave 2
# shellcheck disable=SC2154
[ "$peak2" -le $((peak1 + 4096)) ] ||
    fail "the second wave peaked at $peak2 KiB, the first at $peak1 KiB: memory is not given back"
log "second wave peak $peak2 KiB vs first $peak1 KiB"

proxy_alive || fail "the proxy died"
[ "$(recorder_conns)" = 0 ] || fail "the backend of $ORG saw $(recorder_conns) connections"
stop_guard
[ "$(jabberd2_connects)" = 1 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected the guard's only"
pass
