#!/bin/bash
# t10-multi-domain: two domains in one proxy, each with its own certificate and its own backend.
# SNI picks the certificate (XEP-0368); without SNI the first domain's is shown on Direct TLS and
# the stream's domain on STARTTLS; a stream whose `to` differs from the SNI it asked for is
# refused with <host-unknown/> (no domain fronting onto another backend); an SNI we do not serve
# fails the handshake. Logged-in traffic for each domain reaches only that domain's jabberd2.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

ORG=example.org
[ -r "$XTP_CERTS/$ORG.crt" ] || fail "test certificate missing: $XTP_CERTS/$ORG.crt"

start_jabberd2 "$ORG"
ORG_DIR=$JABBERD2_DIR
ORG_PORT=$BACKEND_C2S_PORT
start_jabberd2 "$DOMAIN"
TEST_DIR=$JABBERD2_DIR

# The first domain stays the default for clients without SNI; add the second one after it.
write_proxy_config "$T/proxy.yaml"
"$PY" - "$T/proxy.yaml" "$ORG" "$XTP_CERTS/$ORG.crt" "$XTP_CERTS/$ORG.key" "$ORG_PORT" <<'PY'
import sys
path, dom, crt, key, port = sys.argv[1:]
lines = open(path).read().splitlines(True)
i = next(n for n, l in enumerate(lines) if l.startswith("listeners:"))
lines[i:i] = [f"  {dom}:\n", f"    cert: {crt}\n", f"    key: {key}\n",
              f"    backend: {{ c2s: \"127.0.0.1:{port}\" }}\n"]
open(path, "w").writelines(lines)
PY
start_proxy "$T/proxy.yaml"

# connects DIR: connections that jabberd2 instance accepted, its own readiness probe aside.
connects() { echo $(($(grep -c '\] connect$' "$1/c2s.log" || true) - 1)); }

# Certificates: SNI chooses; no SNI on Direct TLS shows the first domain's.
s_client "$T/sni-org.out" -connect "127.0.0.1:$PROXY_DIRECT_PORT" -servername "$ORG" \
    -verify_hostname "$ORG" -CAfile "$CA" -verify_return_error ||
    fail "Direct TLS with SNI $ORG: $(tail -3 "$T/sni-org.out")"
grep -q "CN *= *$ORG" "$T/sni-org.out" || fail "SNI $ORG did not get the $ORG certificate"
s_client "$T/nosni.out" -connect "127.0.0.1:$PROXY_DIRECT_PORT" -noservername -CAfile "$CA" ||
    fail "Direct TLS without SNI failed: $(tail -3 "$T/nosni.out")"
grep -q "CN *= *$DOMAIN" "$T/nosni.out" || fail "no SNI did not get the first domain's certificate"
s_client "$T/starttls-org.out" -starttls xmpp -xmpphost "$ORG" \
    -connect "127.0.0.1:$PROXY_STARTTLS_PORT" -noservername -verify_hostname "$ORG" \
    -CAfile "$CA" -verify_return_error ||
    fail "STARTTLS for $ORG without SNI: $(tail -3 "$T/starttls-org.out")"
log "certificates: SNI $ORG -> $ORG, no SNI -> $DOMAIN, STARTTLS to='$ORG' -> $ORG"

# An SNI we do not serve: no certificate at all.
s_client "$T/sni-bad.out" -connect "127.0.0.1:$PROXY_DIRECT_PORT" -servername nothere.invalid \
    -CAfile "$CA" || true
if grep -q 'BEGIN CERTIFICATE' "$T/sni-bad.out"; then
    fail "an unknown SNI got a certificate"
fi
log "unknown SNI: handshake refused"

# SNI example.test, then a stream to example.org: refused before any backend is contacted.
org_before=$(connects "$ORG_DIR")
raw --port "$PROXY_DIRECT_PORT" --domain "$DOMAIN" --tls --send "$(stream_header "$ORG")" \
    --expect-stream-error host-unknown --expect-closed >"$T/front.out" 2>&1 ||
    {
        cat "$T/front.out"
        fail "a stream to $ORG under SNI $DOMAIN was not refused"
    }
[ "$(connects "$ORG_DIR")" = "$org_before" ] || fail "the fronted stream reached $ORG's jabberd2"
log "SNI $DOMAIN + to='$ORG': <host-unknown/>, no backend contacted"

# Real sessions for each domain land on their own backend.
test_before=$(connects "$TEST_DIR")
org_before=$(connects "$ORG_DIR")
for mode in direct starttls; do
    port=$PROXY_DIRECT_PORT
    [ "$mode" = starttls ] && port=$PROXY_STARTTLS_PORT
    "$PY" "$LIB_DIR/xmpp_client.py" --mode "$mode" --host 127.0.0.1 --port "$port" \
        --ca "$CA" --domain "$ORG" >"$T/client-org-$mode.out" 2>&1 ||
        {
            cat "$T/client-org-$mode.out"
            fail "slixmpp session for $ORG over $mode"
        }
done
[ $(($(connects "$ORG_DIR") - org_before)) = 4 ] ||
    fail "$ORG's jabberd2 saw $(($(connects "$ORG_DIR") - org_before)) connections, expected 4"
[ "$(connects "$TEST_DIR")" = "$test_before" ] || fail "$DOMAIN's jabberd2 got $ORG's sessions"
log "4 logged-in sessions for $ORG reached only $ORG's jabberd2"
proxy_alive || fail "the proxy died"
pass
