#!/bin/bash
# t01-c2s-starttls: a real client session (slixmpp: alice and bob log in, alice sends bob a
# message) through the proxy's STARTTLS listener to jabberd2. The client enforces
# <starttls><required/>, certificate checks against the test CA and no plaintext SASL; the proxy
# must log one open and one close line per session, naming the TLS version and suite.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
proxy_mark

xmpp_client starttls "$PROXY_STARTTLS_PORT" >"$T/client.out" 2>&1 ||
    fail "xmpp_client through STARTTLS: $(grep -E 'FAIL|Error' "$T/client.out" | head -3)"
cat "$T/client.out"
grep -Eq 'over TLSv1\.[23] ' "$T/client.out" || fail "the client did not report TLS 1.2/1.3"

[ "$(jabberd2_connects)" = 2 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected 2"
jabberd2_wait_disconnects 2 5 || fail "jabberd2 did not see both sessions end"
[ "$(jabberd2_packets)" -gt 0 ] || fail "jabberd2 processed no stanza"

# shellcheck disable=SC2016 # expanded by eval, each time it is polled
wait_until 5 eval '[ "$(proxy_log_new | grep -Ec "listener=c2s .*$PROXY_CLOSE_RE")" -ge 2 ]' ||
    fail "the proxy did not log two session closes"
check_proxy_sessions 2 c2s || fail "proxy session log lines"
proxy_alive || fail "the proxy died"
pass
