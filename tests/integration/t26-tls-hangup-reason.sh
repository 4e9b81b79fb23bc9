#!/bin/bash
# t26-tls-hangup-reason: a client that hangs up in the middle of the handshake is a peer
# leaving, not a TLS failure.
#
# Bug: the client reads the ServerHello and resets the connection; the proxy is still writing
# the rest of its flight (Certificate, ...) from inside mbedtls_ssl_handshake(), the write fails
# with EPIPE, relay_write() records it in c->peer.failed, mbedTLS returns an error and
# handshake_step() closes with CONN_END_TLS: the close line says
#   close reason=tls-error error=ETLS (TLS failure: handshake: send callback failed: broken
#   pipe (-0x6c00))
# which puts every impatient client into the TLS-failure count (and its alerting). Same in
# conn_pump_peer() for tls_read(). Seen in 3 of 4 hang-ups in a first run of t20.
#
# Fix (conn.c): when c->peer.failed is set, close with CONN_END_PEER_IO and that code.
# Expected: 20 such hang-ups, each one close line, none with reason=tls-error.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"

LOG_LEVEL=info attack_setup direct
attack_mark
for i in $(seq 1 10); do
    for kind in good-tls12 good-tls13; do
        "$PY" "$LIB_DIR/tlsattack.py" hello "$kind" --port "$PROXY_DIRECT_PORT" --domain "$ORG" \
            --expect accepted --hangup >"$T/hangup.out" 2>&1 || {
            cat "$T/hangup.out"
            fail "hang-up $i ($kind): no ServerHello"
        }
    done
done
tls=$(proxy_log_new | grep -c 'close reason=tls-error' || true)
log "20 hang-ups after the ServerHello: $tls logged as tls-error"
proxy_log_new | grep 'close reason=tls-error' | head -3 || true
expect_closes 20 'peer-io-error|peer-eof'
stop_guard
pass
