#!/usr/bin/env bash
# t34: the TLS audit of the s2s listeners (issue 6, "TLS audit in CI"). testssl.sh 3.0.8 in
# Debian 12 knows only the c2s STARTTLS dialog (t09), so this is the equivalent with
# `openssl s_client -starttls xmpp-server` probes, on the STARTTLS and the Direct TLS s2s
# listener: SSLv3/TLS 1.0/TLS 1.1 hellos, CBC-only, static-RSA-only, NULL and anonymous offers
# and ffdhe-only groups are refused by the proxy (not by OpenSSL before sending); TLS 1.2 with
# OpenSSL's defaults gets ECDHE with AES-GCM or ChaCha20-Poly1305; TLS 1.3 works; the server
# certificate is the domain's. Any weak finding fails the build. (RC4 and 3DES: OpenSSL 3 no longer
# sends them at all; the proxy's suite list has neither, see tls.c and t09.)
. "$(dirname "$0")/lib.sh"

need_cmd openssl timeout
S2S_PORT=$(free_port)
S2S_DIRECT=$(free_port)
OUT_PORT=$(free_port)
SECRET=$T/dialback.secret
cat >"$T/proxy.yaml" <<EOF
log: { level: info }
tls: { ca_file: $CA }
domains:
  $DOMAIN: { cert: $CERT, key: $KEY, backend: { s2s: "127.0.0.1:$(free_port)" } }
listeners:
  - { name: s2s, listen: "127.0.0.1:$S2S_PORT", kind: s2s }
  - { name: s2s-direct, listen: "127.0.0.1:$S2S_DIRECT", kind: s2s, tls: direct }
  - { name: s2s-out, listen: "127.0.0.1:$OUT_PORT", kind: s2s-out }
s2s: { state_file: $T/state, dialback_secret_file: $SECRET }
limits: { drain_timeout: 0s, handshake_timeout: 5s }
EOF
PROXY_STARTTLS_PORT=$S2S_PORT PROXY_DIRECT_PORT=$S2S_DIRECT start_proxy "$T/proxy.yaml"

probe() { # probe NAME MODE ARGS...: MODE starttls|direct
    local name=$1 mode=$2
    shift 2
    local how=(-starttls xmpp-server -xmpphost "$DOMAIN" -connect "127.0.0.1:$S2S_PORT")
    [ "$mode" = direct ] && how=(-connect "127.0.0.1:$S2S_DIRECT" -alpn xmpp-server)
    timeout 15 openssl s_client "${how[@]}" -servername "$DOMAIN" -CAfile "$CA" "$@" \
        </dev/null >"$T/$name.$mode.out" 2>&1 || true
}
accepted() { grep -Eq '^New, TLSv1\.[0-3], Cipher is [A-Z0-9_]' "$1"; }
must_refuse() { # must_refuse NAME ARGS...
    local name=$1 mode out
    shift
    for mode in starttls direct; do
        probe "$name" "$mode" "$@"
        out=$T/$name.$mode.out
        if grep -Eqi 'no protocols available|no ciphers available|no cipher match|unknown option' "$out"; then
            fail "$name ($mode): OpenSSL refused locally, the probe did not reach the proxy"
        fi
        grep -q '^CONNECTED' "$out" || fail "$name ($mode): no connection: $(tail -n 2 "$out")"
        accepted "$out" && fail "$name ($mode) was ACCEPTED: $(grep -E '^New' "$out")"
    done
    log "$name: refused on both s2s listeners"
}
LOW='DEFAULT:@SECLEVEL=0'
must_refuse tls1.0 -tls1 -cipher "$LOW"
must_refuse tls1.1 -tls1_1 -cipher "$LOW"
must_refuse cbc -tls1_2 -cipher 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:ECDHE-RSA-AES128-SHA'
must_refuse static-rsa -tls1_2 -cipher 'AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA'
must_refuse null-anon -tls1_2 -cipher "NULL:aNULL:eNULL:@SECLEVEL=0"
must_refuse ffdhe-only -tls1_3 -groups ffdhe2048:ffdhe3072
if openssl s_client -help 2>&1 | grep -q -- '-ssl3'; then
    must_refuse ssl3 -ssl3 -cipher "$LOW"
else
    log "ssl3: this OpenSSL cannot send an SSLv3 hello (the TLS 1.0/1.1 probes cover old hellos)"
fi

for mode in starttls direct; do
    probe tls12 "$mode" -tls1_2 -verify_return_error -verify_hostname "$DOMAIN"
    suite=$(sed -n 's/^New, TLSv1\.2, Cipher is \([A-Z0-9-]*\)$/\1/p' "$T/tls12.$mode.out")
    case "$suite" in
    ECDHE-ECDSA-AES128-GCM-SHA256 | ECDHE-ECDSA-AES256-GCM-SHA384 | ECDHE-ECDSA-CHACHA20-POLY1305 | \
        ECDHE-RSA-AES128-GCM-SHA256 | ECDHE-RSA-AES256-GCM-SHA384 | ECDHE-RSA-CHACHA20-POLY1305) ;;
    *) fail "TLS 1.2 ($mode) negotiated '$suite': not ECDHE with an AEAD" ;;
    esac
    grep -q 'Verify return code: 0 (ok)' "$T/tls12.$mode.out" ||
        fail "TLS 1.2 ($mode): the certificate does not verify for $DOMAIN"
    probe tls13 "$mode" -tls1_3
    grep -Eq '^New, TLSv1\.3, Cipher is TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)' \
        "$T/tls13.$mode.out" || fail "TLS 1.3 ($mode) did not work: $(grep -E '^New' "$T/tls13.$mode.out")"
    log "$mode: TLS 1.2 -> $suite, TLS 1.3 ok, certificate for $DOMAIN"
done
proxy_alive || fail "the proxy died"
pass
