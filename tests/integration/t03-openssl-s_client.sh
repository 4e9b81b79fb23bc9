#!/bin/bash
# t03-openssl-s_client: OpenSSL's own client negotiates STARTTLS (RFC 6120 §5) and Direct TLS
# (XEP-0368) with the proxy: TLS 1.3 by default, and the certificate verifies against the test
# CA for example.test (-verify_return_error aborts the handshake otherwise).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

check_ok() { # NAME OUT
    grep -Eq '^New, TLSv1\.3, Cipher is ' "$2" || fail "$1: not TLS 1.3: $(grep -E '^New|error' "$2" | head -3)"
    grep -q 'Verify return code: 0 (ok)' "$2" || fail "$1: certificate did not verify"
    log "$1: $(grep -E '^New, ' "$2"), $(grep -m1 'Verify return code' "$2" | sed 's/^ *//')"
}

s_client "$T/starttls.out" -connect "127.0.0.1:$PROXY_STARTTLS_PORT" -starttls xmpp \
    -xmpphost "$DOMAIN" -servername "$DOMAIN" -CAfile "$CA" -verify_return_error \
    -verify_hostname "$DOMAIN" || fail "s_client -starttls xmpp failed: $(tail -n 5 "$T/starttls.out")"
check_ok STARTTLS "$T/starttls.out"

s_client "$T/direct.out" -connect "127.0.0.1:$PROXY_DIRECT_PORT" -servername "$DOMAIN" \
    -alpn xmpp-client -CAfile "$CA" -verify_return_error -verify_hostname "$DOMAIN" ||
    fail "s_client direct TLS failed: $(tail -n 5 "$T/direct.out")"
check_ok "Direct TLS" "$T/direct.out"
grep -q 'ALPN protocol: xmpp-client' "$T/direct.out" || log "note: no ALPN selected on the direct port"

# The same with a name the certificate does not carry must fail: the check above is real.
if s_client "$T/wrongname.out" -connect "127.0.0.1:$PROXY_DIRECT_PORT" -servername "$DOMAIN" \
    -CAfile "$CA" -verify_return_error -verify_hostname wrong.test; then
    fail "s_client accepted the certificate for wrong.test"
fi

# s_client never completes an XMPP stream, so jabberd2 must not have been involved.
[ "$(jabberd2_connects)" = 0 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected 0"
proxy_alive || fail "the proxy died"
pass
