#!/bin/bash
# t04-tls-policy: the TLS policy of RFC 9325 / RFC 7590 on the STARTTLS listener: TLS 1.1 is
# refused, TLS 1.2 with only CBC suites is refused, TLS 1.2 with OpenSSL's defaults gets an
# ECDHE suite with AES-GCM or ChaCha20-Poly1305.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

st() { # OUT ARGS...: s_client over STARTTLS on the proxy
    local out=$1
    shift
    s_client "$out" -connect "127.0.0.1:$PROXY_STARTTLS_PORT" -starttls xmpp -xmpphost "$DOMAIN" \
        -servername "$DOMAIN" -CAfile "$CA" "$@"
}
handshake_done() { grep -Eq '^New, TLSv1\.[0-3], Cipher is [A-Z0-9]' "$1"; }
# refused NAME OUT: the handshake failed on the proxy's side, not in OpenSSL before sending.
refused() {
    if grep -Eqi 'no protocols available|no ciphers available|no cipher match' "$2"; then
        fail "$1: OpenSSL refused locally, the test did not reach the proxy: $(grep -Ei 'no (protocols|cipher)' "$2" | head -1)"
    fi
    grep -q '^CONNECTED' "$2" || fail "$1: s_client did not connect: $(tail -n 3 "$2")"
    log "$1 refused: $(grep -Ei 'alert|error|eof' "$2" | head -1)"
}

# TLS 1.1: OpenSSL 3 refuses it itself at the default security level, so lower ours to 0 to
# make sure the ClientHello really goes out and the refusal is the proxy's.
if st "$T/tls11.out" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' || handshake_done "$T/tls11.out"; then
    fail "TLS 1.1 was accepted: $(grep -E '^New' "$T/tls11.out")"
fi
refused "TLS 1.1" "$T/tls11.out"

if st "$T/cbc.out" -tls1_2 -cipher 'ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA' ||
    handshake_done "$T/cbc.out"; then
    fail "TLS 1.2 with CBC-only suites was accepted: $(grep -E '^New' "$T/cbc.out")"
fi
refused "TLS 1.2 CBC-only" "$T/cbc.out"

st "$T/tls12.out" -tls1_2 -verify_return_error -verify_hostname "$DOMAIN" ||
    fail "TLS 1.2 with default suites failed: $(tail -n 5 "$T/tls12.out")"
suite=$(sed -n 's/^New, TLSv1\.2, Cipher is \([A-Z0-9-]*\)$/\1/p' "$T/tls12.out")
[ -n "$suite" ] || fail "TLS 1.2: no cipher suite reported: $(grep -E '^New' "$T/tls12.out")"
case "$suite" in
ECDHE-RSA-AES128-GCM-SHA256 | ECDHE-RSA-AES256-GCM-SHA384 | ECDHE-ECDSA-AES128-GCM-SHA256 | \
    ECDHE-ECDSA-AES256-GCM-SHA384 | ECDHE-RSA-CHACHA20-POLY1305 | ECDHE-ECDSA-CHACHA20-POLY1305) ;;
*) fail "TLS 1.2 negotiated $suite: not ECDHE with AES-GCM or ChaCha20-Poly1305" ;;
esac
log "TLS 1.2 default: $suite"

[ "$(jabberd2_connects)" = 0 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected 0"
proxy_alive || fail "the proxy died"
pass
