#!/bin/bash
# t06-starttls-injection: STARTTLS command injection (CVE-2011-0411 class, RFC 6120 §5.3.3).
# The client writes <starttls/> and a stanza in ONE TCP write. The proxy must answer <proceed/>,
# discard the injected bytes (and log how many), and after the handshake a fresh stream over TLS
# gets jabberd2's features as usual; jabberd2 never sees the injected bytes. Two payloads: an
# iq-auth login and a plaintext SASL PLAIN <auth/>. Each is padded past 2000 bytes so that
# jabberd2's per-connection byte count would show it had it been forwarded.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

HDR=$(stream_header "$DOMAIN")
PAD=$(printf '%02000d' 0)
IQ="<iq type='set' id='inject1'><query xmlns='jabber:iq:auth'><username>alice</username><password>secret</password><resource>r$PAD</resource></query></iq>"
AUTH="<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHNlY3JldA==</auth><message to='bob@$DOMAIN' id='inject2'><body>$PAD</body></message>"

# inject NAME PAYLOAD
inject() {
    local name=$1 payload=$2 len out=$T/$1.out
    len=$(printf '%s' "$payload" | wc -c)
    jabberd2_mark
    proxy_mark
    raw --port "$PROXY_STARTTLS_PORT" --timeout 5 \
        --send "$HDR" --wait '</stream:features>' \
        --send "$STARTTLS$payload" --starttls \
        --send "$HDR" --wait '</stream:features>' \
        --send '</stream:stream>' \
        --expect '<mechanisms' --expect-not 'inject' --expect-not '<success' \
        --expect-not '<stream:error' --expect-closed >"$out" 2>&1 ||
        {
            cat "$out"
            fail "$name: the session after the injection did not behave"
        }
    log "$name: <proceed/>, TLS, jabberd2's features; $len injected bytes"

    # The proxy says it dropped exactly the injected bytes.
    wait_until 5 eval 'proxy_log_new | grep -Eiq "discard"' ||
        fail "$name: the proxy did not log discarded bytes"
    local line
    line=$(proxy_log_new | grep -Ei 'discard' | head -1)
    log "$name: proxy: ${line#* * }"
    grep -Eq "(^|[^0-9])$len([^0-9]|$)" <<<"$line" ||
        fail "$name: the proxy's discard line does not say $len bytes: $line"

    # jabberd2: one connection, no stanza, and far fewer bytes than the payload.
    jabberd2_wait_disconnects 1 5 || fail "$name: jabberd2 did not see the session end"
    [ "$(jabberd2_connects)" = 1 ] || fail "$name: jabberd2 saw $(jabberd2_connects) connections"
    [ "$(jabberd2_packets)" = 0 ] || fail "$name: jabberd2 processed $(jabberd2_packets) stanzas"
    local got
    got=$(jabberd2_bytes_max)
    [ "$got" -lt "$len" ] || fail "$name: jabberd2 read $got bytes, the payload was $len"
    if jabberd2_log_has 'authentication succeeded|inject|jid=alice'; then
        fail "$name: jabberd2's log shows the injected login"
    fi
    log "$name: jabberd2 read $got bytes on its only connection, processed no stanza"
}

inject iq-auth "$IQ"
inject sasl-plain "$AUTH"
proxy_alive || fail "the proxy died"
pass
