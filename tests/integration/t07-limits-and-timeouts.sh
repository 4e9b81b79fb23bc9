#!/bin/bash
# t07-limits-and-timeouts: limits.max_stanza (16KiB here) after TLS ends the stream with
# <policy-violation/> before jabberd2 gets the stanza; limits.handshake_timeout (2s here) closes
# clients that stall before the session is relayed, with a log line; bytes that are not a TLS
# ClientHello after <proceed/> end the session at once; an XML comment after TLS gets
# <restricted-xml/> and never reaches jabberd2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

export MAX_STANZA=16KiB HANDSHAKE_TIMEOUT=2s
start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

HDR=$(stream_header "$DOMAIN")
P=$PROXY_STARTTLS_PORT
TLS_STREAM=(--send "$HDR" --wait '</stream:features>' --send "$STARTTLS" --starttls
    --send "$HDR" --wait '</stream:features>')

elapsed() { sed -n 's/^rawxmpp: .* after \([0-9.]*\) s$/\1/p' "$1"; }
# between LOW HIGH VALUE: LOW <= VALUE <= HIGH (decimals).
between() { awk -v lo="$1" -v hi="$2" -v v="$3" 'BEGIN { exit !(v != "" && v >= lo && v <= hi) }'; }
# closed_with REGEX: the proxy logged a session close matching REGEX since proxy_mark.
closed_with() { wait_until 3 eval "proxy_log_new | grep -E '$PROXY_CLOSE_RE' | grep -Eiq '$1'"; }

# 1. A stanza over max_stanza after TLS: 20,000 bytes, which jabberd2 itself would accept.
jabberd2_mark
proxy_mark
BIG="<message to='bob@$DOMAIN' id='big'><body>$(printf '%020000d' 0)</body></message>"
raw --port "$P" --timeout 5 "${TLS_STREAM[@]}" --send "$BIG" --expect-stream-error policy-violation \
    --expect-closed >"$T/big.out" 2>&1 || {
    cat "$T/big.out"
    fail "oversized stanza: expected <policy-violation/>"
}
jabberd2_wait_disconnects 1 5 || fail "oversized stanza: jabberd2 did not see the session end"
[ "$(jabberd2_packets)" = 0 ] || fail "oversized stanza: jabberd2 processed $(jabberd2_packets) stanzas"
[ "$(jabberd2_bytes_max)" -lt 16384 ] ||
    fail "oversized stanza: jabberd2 read $(jabberd2_bytes_max) bytes on the connection"
log "oversized stanza -> <policy-violation/>, jabberd2 read $(jabberd2_bytes_max) bytes"

# 2. Silent clients are closed after handshake_timeout, on both listeners and after <proceed/>.
idle_case() { # SLUG NAME ARGS...
    local out=$T/idle-$1.out name=$2 t
    shift 2
    proxy_mark
    raw --timeout 6 "$@" --expect-closed >"$out" 2>&1 || {
        cat "$out"
        fail "$name: not closed within 6 s (handshake_timeout is 2 s)"
    }
    t=$(elapsed "$out")
    between 1.5 4.5 "$t" || fail "$name: closed after $t s, expected about 2 s"
    closed_with 'timeout|timed out' || fail "$name: no close line naming the timeout"
    log "$name: closed after $t s: $(proxy_log_new | grep -Ei 'timeout|timed out' | tail -1)"
}
idle_case starttls "silent STARTTLS client" --port "$P"
idle_case direct "silent Direct TLS client" --port "$PROXY_DIRECT_PORT"
idle_case proceed "no ClientHello after <proceed/>" --port "$P" --send "$HDR" --wait '</stream:features>' \
    --send "$STARTTLS" --wait '<proceed'

# 3. Not TLS after <proceed/>: closed at once, logged as a TLS failure.
proxy_mark
raw --port "$P" --timeout 5 --send "$HDR" --wait '</stream:features>' --send "$STARTTLS" \
    --wait '<proceed' --send $'GET / HTTP/1.1\r\nHost: example.test\r\n\r\n' \
    --expect-closed >"$T/garbage.out" 2>&1 || {
    cat "$T/garbage.out"
    fail "garbage after <proceed/>: the connection stayed open"
}
t=$(elapsed "$T/garbage.out")
between 0 1.5 "$t" || fail "garbage after <proceed/>: closed only after $t s"
closed_with 'tls' || fail "garbage after <proceed/>: no close line naming TLS"
log "garbage after <proceed/>: closed after $t s: $(proxy_log_new | grep -E "$PROXY_CLOSE_RE" | tail -1)"

# 4. An XML comment after TLS (RFC 6120 §11.1): padded so that jabberd2's byte count would show it.
jabberd2_mark
COMMENT="<!-- $(printf '%03000d' 0) -->"
raw --port "$P" --timeout 5 "${TLS_STREAM[@]}" --send "$COMMENT" \
    --expect-stream-error restricted-xml --expect-closed >"$T/comment.out" 2>&1 || {
    cat "$T/comment.out"
    fail "comment after TLS: expected <restricted-xml/>"
}
jabberd2_wait_disconnects 1 5 || fail "comment after TLS: jabberd2 did not see the session end"
[ "$(jabberd2_connects)" = 1 ] || fail "comment after TLS: jabberd2 saw $(jabberd2_connects) connections"
[ "$(jabberd2_bytes_max)" -lt 3000 ] ||
    fail "comment after TLS: jabberd2 read $(jabberd2_bytes_max) bytes: the comment got through"
log "comment after TLS -> <restricted-xml/>, jabberd2 read $(jabberd2_bytes_max) bytes"

proxy_alive || fail "the proxy died"
pass
