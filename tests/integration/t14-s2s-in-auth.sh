#!/usr/bin/env bash
# t14: s2s-in authenticates remote domains itself (issue 3, test 3, the inbound half).
#
# The proxy serves example.org; the "remote server" is rawxmpp.py presenting certificates
# from tests/certs for example.test. Each case is a real STARTTLS s2s stream:
#   - a valid certificate: SASL EXTERNAL is offered and succeeds; only then does the proxy
#     contact the backend (here nothing listens: the session ends backend-connect);
#   - untrusted CA, wrong name, expired certificate, no certificate: EXTERNAL is not offered
#     and a <db:result/> is refused with <not-authorized/> and a close line saying why;
#   - a <db:result/> for a domain the (valid) certificate does not cover: refused, pair by pair
#     (example.test passes, other.test on the same stream does not);
#   - <db:verify/>: a forged key is answered invalid, the key the proxy's own secret makes
#     (XEP-0185) valid; neither reaches the backend;
#   - a stanza before authentication: <not-authorized/>.
# None of the refused sessions gets past S2S_AUTH, so the backend never sees a byte of them.
. "$(dirname "$0")/lib.sh"

need_cmd openssl
S2S_PORT=$(free_port)
OUT_PORT=$(free_port)
BACK_S2S=$(free_port) # nobody listens: reaching it is visible as backend-connect
SECRET=$T/dialback.secret
printf 'test-secret-%s\n' "$$" >"$SECRET"
chmod 600 "$SECRET"

cat >"$T/proxy.yaml" <<EOF
log: { level: debug }
tls: { ca_file: $CA }
domains:
  example.org:
    cert: $XTP_CERTS/example.org.crt
    key: $XTP_CERTS/example.org.key
    backend: { s2s: "127.0.0.1:$BACK_S2S" }
listeners:
  - { name: s2s, listen: "127.0.0.1:$S2S_PORT", kind: s2s, tls: starttls }
  - { name: s2s-out, listen: "127.0.0.1:$OUT_PORT", kind: s2s-out }
s2s:
  verify: required
  state_file: $T/remote-certs
  dialback_secret_file: $SECRET
limits: { handshake_timeout: 5s, drain_timeout: 0s }
EOF
PROXY_STARTTLS_PORT=$S2S_PORT PROXY_DIRECT_PORT=$OUT_PORT start_proxy "$T/proxy.yaml"

SRV="jabber:server"
hdr() { # hdr FROM: a server stream header to example.org
    printf "<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:db='jabber:server:dialback' \
xmlns:stream='%s' from='%s' to='example.org' version='1.0'>" "$SRV" "$NS_STREAMS" "$1"
}
# s2s NAME CERTBASE ARGS...: a STARTTLS s2s stream from example.test presenting CERTBASE.crt,
# up to the features after TLS, then ARGS (more steps and checks).
s2s() {
    local name=$1 cert=$2
    shift 2
    local certargs=()
    [ "$cert" = none ] || certargs=(--cert "$XTP_CERTS/$cert.crt" --key "$XTP_CERTS/$cert.key")
    "$PY" "$LIB_DIR/rawxmpp.py" --port "$S2S_PORT" --ca "$CA" --domain example.org --timeout 6 \
        "${certargs[@]}" --send "$(hdr example.test)" --wait '</stream:features>' \
        --send "$STARTTLS" --starttls --send "$(hdr example.test)" --wait '</stream:features>' \
        "$@" >"$T/$name.out" 2>"$T/$name.err" || {
        cat "$T/$name.err"
        fail "$name: rawxmpp checks failed"
    }
}
DBR="<db:result from='example.test' to='example.org'>0123456789abcdef</db:result>"

# 1. A valid certificate: EXTERNAL offered and accepted; the backend comes only after it.
proxy_mark
s2s valid example.test \
    --expect '<mechanism>EXTERNAL</mechanism>' \
    --send "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>ZXhhbXBsZS50ZXN0</auth>" \
    --wait '<success' --send "$(hdr example.test)" --wait '</stream:features>' \
    --expect-stream-error remote-connection-failed
wait_proxy_log 'reason=backend-connect .*from=BACKEND_CONNECT .*remote=example\.test auth=pkix' ||
    fail "valid: no backend-connect close after SASL EXTERNAL"

# 2. Certificates that do not prove example.test: no EXTERNAL, dialback refused, and why.
for c in "untrusted untrusted.example.test not trusted" "wrongname wrong-name wrong.invalid" \
    "expired expired.example.test expired" "nocert none no certificate"; do
    set -- $c
    name=$1 cert=$2
    shift 2
    why="$*"
    proxy_mark
    s2s "$name" "$cert" --expect-not 'EXTERNAL' --send "$DBR" \
        --expect-stream-error not-authorized --expect-closed
    wait_proxy_log "reason=not-authenticated .*from=S2S_AUTH" ||
        fail "$name: no not-authenticated close line"
    proxy_log_new | grep -E 'reason=not-authenticated' | grep -qi -- "$why" ||
        fail "$name: the close line does not say '$why': $(proxy_log_new | grep close)"
done

# 3. Pair by pair: example.test is covered, other.test is not (same stream, same certificate).
proxy_mark
s2s pairs example.test --send "$DBR" --wait "type='valid'" \
    --expect "<db:result from='example.org' to='example.test' type='valid'/>" \
    --expect-stream-error remote-connection-failed
wait_proxy_log 'reason=backend-connect' || fail "pairs: the first pair did not reach the backend"
proxy_mark
s2s pairs2 example.test --expect-not 'never' \
    --send "<db:result from='other.test' to='example.org'>0123</db:result>" \
    --expect-stream-error not-authorized
wait_proxy_log 'reason=not-authenticated .*other\.test' || fail "pairs: other.test was not refused"

# 4. db:verify is answered by recomputing the key (XEP-0185), on a stream without any auth.
KEY=$("$PY" - "$SECRET" <<'EOF'
import hashlib, hmac, sys
secret = open(sys.argv[1], "rb").read().rstrip(b"\n")
k = hashlib.sha256(secret).hexdigest().encode()  # XEP-0185 §3: the hex digest is the key
# receiving example.test, originating example.org, the id example.test gave our stream
print(hmac.new(k, b"example.test example.org s2s-out-stream-id", hashlib.sha256).hexdigest())
EOF
)
proxy_mark
s2s verify none \
    --send "<db:verify from='example.test' to='example.org' id='s2s-out-stream-id'>$KEY</db:verify>" \
    --wait "type='valid'" \
    --send "<db:verify from='example.test' to='example.org' id='s2s-out-stream-id'>${KEY%?}0</db:verify>" \
    --wait "type='invalid'" \
    --expect "<db:verify from='example.org' to='example.test' id='s2s-out-stream-id' type='valid'/>" \
    --expect "<db:verify from='example.org' to='example.test' id='s2s-out-stream-id' type='invalid'/>" \
    --send '</stream:stream>' --expect-closed
wait_proxy_log 'reason=done .*from=S2S_AUTH' || fail "verify: the stream did not end cleanly"
proxy_log_new | grep -q 'backend' && fail "verify: a db:verify stream touched the backend"

# 5. A stanza before authentication.
proxy_mark
s2s early example.test --send "<message from='a@example.test' to='b@example.org'><body>x</body></message>" \
    --expect-stream-error not-authorized
wait_proxy_log 'reason=not-authenticated .*before the remote authenticated' ||
    fail "early: no close line for the stanza before authentication"

proxy_alive || fail "the proxy died"
stop_proxy
pass
