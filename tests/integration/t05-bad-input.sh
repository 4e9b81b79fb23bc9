#!/bin/bash
# t05-bad-input: one case per stream rule (RFC 6120 §4.9.3, §5.3.1, §11.1). Each must end with
# exactly the stream error named, inside a stream the proxy opened, with the connection closed
# and without jabberd2 ever seeing a connection. Afterwards a normal session still works.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

HDR=$(stream_header "$DOMAIN")
SASL_PLAIN="<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth>"
n=0

# expect_error NAME CONDITION PORT ARGS...: rawxmpp ARGS against PORT; checks the error.
expect_error() {
    local name=$1 cond=$2 port=$3
    shift 3
    n=$((n + 1))
    if ! raw --port "$port" --timeout 5 "$@" --expect '<stream:stream' --expect-not '<proceed' \
        --expect-stream-error "$cond" --expect-closed >"$T/case$n.out" 2>&1; then
        cat "$T/case$n.out"
        fail "$name: expected <$cond/> and a closed stream"
    fi
    log "$name -> <$cond/>"
}

P=$PROXY_STARTTLS_PORT
expect_error "unknown domain in to" host-unknown "$P" --send "$(stream_header nope.test)"
expect_error "jabber:server on a c2s listener" invalid-namespace "$P" \
    --send "$(stream_header "$DOMAIN" jabber:server)"
expect_error "no version attribute" unsupported-version "$P" \
    --send "$(stream_header "$DOMAIN" jabber:client '')"
expect_error "SASL PLAIN before STARTTLS" policy-violation "$P" \
    --send "$HDR" --wait '</stream:features>' --send "$SASL_PLAIN"
expect_error "malformed XML (unmatched end tag)" not-well-formed "$P" --send "$HDR</message>"
expect_error "malformed XML (unquoted attribute)" not-well-formed "$P" \
    --send "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='$NS_STREAMS' to=$DOMAIN version='1.0'>"
expect_error "DOCTYPE" restricted-xml "$P" --send "<?xml version='1.0'?><!DOCTYPE stream:stream>$HDR"
expect_error "ENTITY declaration" restricted-xml "$P" \
    --send "<?xml version='1.0'?><!DOCTYPE s [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;'>]>$HDR"
expect_error "processing instruction" restricted-xml "$P" --send "$HDR<?evil payload?>"
expect_error "comment" restricted-xml "$P" --send "$HDR<!-- a comment -->"

# The stream rules hold after Direct TLS too (the header is checked again, design.md §2 step 5).
D=$PROXY_DIRECT_PORT
expect_error "Direct TLS: unknown domain" host-unknown "$D" --tls --send "$(stream_header nope.test)"
expect_error "Direct TLS: jabber:server" invalid-namespace "$D" --tls \
    --send "$(stream_header "$DOMAIN" jabber:server)"

c=$(jabberd2_connects)
[ "$c" = 0 ] || fail "jabberd2 saw $c connections during the bad-input cases, expected 0"

# A comment right behind a valid post-TLS header: the proxy may already have opened the backend
# stream for that header (design.md §2 step 5), but the comment itself must never reach
# jabberd2. Padded so that jabberd2's byte count would show it.
expect_error "Direct TLS: comment" restricted-xml "$D" --tls \
    --send "$HDR<!-- $(printf '%03000d' 0) -->"
c=$(jabberd2_connects)
if [ "$c" != 0 ]; then
    [ "$c" = 1 ] || fail "Direct TLS comment: jabberd2 saw $c connections"
    jabberd2_wait_disconnects 1 5 || fail "Direct TLS comment: jabberd2 did not see the session end"
    [ "$(jabberd2_bytes_max)" -lt 3000 ] ||
        fail "Direct TLS comment: jabberd2 read $(jabberd2_bytes_max) bytes: the comment got through"
fi
proxy_alive || fail "the proxy died"

jabberd2_mark
xmpp_client starttls "$PROXY_STARTTLS_PORT" >"$T/client.out" 2>&1 ||
    fail "a good session after the bad ones: $(grep FAIL "$T/client.out")"
[ "$(jabberd2_connects)" = 2 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected 2"
pass
