#!/bin/bash
# t11-backpressure: a client that stops reading must not make the proxy buffer what its backend
# keeps sending: past the high-water mark the proxy stops reading the backend (relay.h), and
# when the client reads again every message arrives, in order. backpressure.py floods 16 MB
# from bob (straight into jabberd2) towards a non-reading alice (through the proxy) and bounds
# the proxy's RSS growth; then a new session must still work.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

start_jabberd2 "$DOMAIN"
LOG_LEVEL=info write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

"$PY" "$LIB_DIR/backpressure.py" --proxy-port "$PROXY_DIRECT_PORT" \
    --backend-port "$BACKEND_C2S_PORT" --proxy-pid "$PROXY_PID" --ca "$CA" --domain "$DOMAIN" \
    --count 4000 --size 4096 --max-growth-kib 4096 --timeout 120 >"$T/bp.out" 2>&1 || {
    cat "$T/bp.out"
    fail "backpressure"
}
cat "$T/bp.out"
xmpp_client direct "$PROXY_DIRECT_PORT" >"$T/client.out" 2>&1 || {
    cat "$T/client.out"
    fail "a new session after the flood"
}
proxy_alive || fail "the proxy died"
pass
