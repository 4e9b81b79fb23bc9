#!/bin/bash
# t02-c2s-direct-tls: the t01 session over the Direct TLS listener (XEP-0368: TLS first, ALPN
# xmpp-client, SNI example.test), then the stream to jabberd2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
proxy_mark

xmpp_client direct "$PROXY_DIRECT_PORT" >"$T/client.out" 2>&1 ||
    fail "xmpp_client through Direct TLS: $(grep -E 'FAIL|Error' "$T/client.out" | head -3)"
cat "$T/client.out"
grep -Eq 'over TLSv1\.[23] ' "$T/client.out" || fail "the client did not report TLS 1.2/1.3"

[ "$(jabberd2_connects)" = 2 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected 2"
jabberd2_wait_disconnects 2 5 || fail "jabberd2 did not see both sessions end"
[ "$(jabberd2_packets)" -gt 0 ] || fail "jabberd2 processed no stanza"

# shellcheck disable=SC2016 # expanded by eval, each time it is polled
wait_until 5 eval '[ "$(proxy_log_new | grep -Ec "listener=c2s-direct .*$PROXY_CLOSE_RE")" -ge 2 ]' ||
    fail "the proxy did not log two session closes"
check_proxy_sessions 2 c2s-direct || fail "proxy session log lines"
proxy_alive || fail "the proxy died"
pass
