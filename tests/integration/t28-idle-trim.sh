#!/bin/bash
# t28-idle-trim: idle sessions give their parsers and TLS record buffers back
# (conn_trim_idle: nothing read for 5 s, checked every 2 s), and a trimmed session goes on as
# if nothing happened. Against jabberd2, through both c2s listeners, each client falls idle
# three times for 8 s, and each time the proxy must log that it trimmed it:
#   1. after the features over TLS, before SASL: then SASL PLAIN, the stream restart (a reset
#      of a trimmed parser) and resource binding;
#   2. logged in: then a message to its own full JID, which jabberd2 sends back (both parsers
#      and both TLS buffers rebuilt);
#   3. in the middle of a stanza: the first half is sent, the rest 8 s later. The parser keeps
#      the half (no trim while a unit is pending) while the TLS buffers are trimmed; the whole
#      message must arrive once.
# Finally the client ends its stream: one close line per session, reason=done.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

NS_SASL=urn:ietf:params:xml:ns:xmpp-sasl
NS_BIND=urn:ietf:params:xml:ns:xmpp-bind
STARTTLS="<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
IDLE=8 # seconds: more than CONN_IDLE_TRIM_MS + CONN_SWEEP_MS

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
proxy_mark

hdr=$(stream_header "$DOMAIN")
auth() { # auth USER
    printf "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" "$NS_SASL" \
        "$(printf '\0%s\0secret' "$1" | base64)"
}
# session USER RESOURCE: the steps after the TLS handshake, with the three idle spells.
session() {
    local jid=$1@$DOMAIN/$2
    STEPS=(--send "$hdr" --wait '</stream:features>' --ready "$T/$1.idle1" --sleep "$IDLE"
        --send "$(auth "$1")" --wait '<success' --send "$hdr" --wait '</stream:features>'
        --send "<iq type='set' id='b1'><bind xmlns='$NS_BIND'><resource>$2</resource></bind></iq>"
        --wait '</iq>' --ready "$T/$1.idle2" --sleep "$IDLE"
        --send "<message to='$jid' id='m1'><body>after-idle-$1</body></message>"
        --wait "after-idle-$1" --send "<message to='$jid' id='m2'><body>split-"
        --ready "$T/$1.idle3" --sleep "$IDLE" --send "half-$1</body></message>"
        --wait "split-half-$1" --send '</stream:stream>')
}

session alice starttls
raw --port "$PROXY_STARTTLS_PORT" --timeout 40 --send "$hdr" --wait '</stream:features>' \
    --send "$STARTTLS" --starttls "${STEPS[@]}" --expect-closed >"$T/alice.out" 2>&1 &
ALICE=$!
session bob direct
raw --port "$PROXY_DIRECT_PORT" --timeout 40 --tls "${STEPS[@]}" --expect-closed \
    >"$T/bob.out" 2>&1 &
BOB=$!

# Each idle spell: both clients announced it, and "trimmed N idle sessions" lines since then
# add up to both sessions (a session is trimmed once per spell; the two may fall in
# different sweeps).
trimmed() { proxy_log_new | sed -n 's/.* trimmed \([0-9]*\) idle sessions.*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
trimmed_reaches() { [ "$(trimmed)" -ge "$1" ]; }
for spell in 1 2 3; do
    wait_until 20 test -e "$T/alice.idle$spell" -a -e "$T/bob.idle$spell" ||
        fail "spell $spell: the clients did not get there ($(tail -2 "$T/alice.out" "$T/bob.out"))"
    want=$(($(trimmed) + 2))
    wait_until 12 trimmed_reaches "$want" ||
        fail "spell $spell: $(trimmed) sessions trimmed in all, want $want"
done

wait "$ALICE" || fail "alice: $(tail -3 "$T/alice.out")"
wait "$BOB" || fail "bob: $(tail -3 "$T/bob.out")"
for u in alice bob; do
    n=$(grep -o "split-half-$u" "$T/$u.out" | wc -l)
    [ "$n" = 1 ] || fail "$u received the split message $n times"
    grep -q '<stream:error' "$T/$u.out" && fail "$u got a stream error"
done
closes() { [ "$(proxy_log_new | grep -Ec "$PROXY_CLOSE_RE")" -ge 2 ]; }
wait_until 5 closes || fail "the proxy did not log two session closes"
check_proxy_sessions 1 c2s && check_proxy_sessions 1 c2s-direct || fail "proxy session log lines"
[ "$(proxy_log_new | grep -E "$PROXY_CLOSE_RE" | grep -c 'reason=done')" = 2 ] ||
    fail "close reasons: $(proxy_log_new | grep -E "$PROXY_CLOSE_RE")"
proxy_alive || fail "the proxy died"
pass
