#!/bin/bash
# t27-tls-clear-reasons: two TLS failures that mbedTLS reports with generic codes get a
# named close line (tls.c name_failure()).
#
# 1. A TLS 1.3 KeyUpdate from the peer (RFC 8446 §4.6.3; openssl s_client 'k'). mbedTLS 3.6
#    cannot process it (design.md §5), so the session ends, which is accepted; but the close
#    line says only
#      close reason=tls-error error=ETLS (TLS failure: read: SSL - An unexpected message was
#      received from our peer (-0x7700))
#    which an operator cannot tell from an attack. Expected: the line names the KeyUpdate.
# 2. A record header claiming more than 2^14 + 256 bytes (RFC 8446 §5.1/§5.2). The session
#    ends, but mbedTLS sends no alert and the line says "An invalid SSL record was received"
#    (first record) or, in the relay, "Bad input parameters to function (-0x7100)", which
#    reads like a bug in the proxy. Expected: a record_overflow alert (22), as the RFCs require,
#    and a close line that names the oversized record.
#
# Fix (tls.c, verified with this test): after a failed mbedtls_ssl_handshake()/ssl_read(),
# look at the message still in mbedTLS's input buffer (private fields in_msgtype, in_msg,
# in_hdr): a TLS 1.3 handshake message of type 24 (key_update) -> t->why "the peer sent a TLS
# 1.3 KeyUpdate, which mbedTLS 3.6 cannot process"; INVALID_RECORD or BAD_INPUT_DATA with a
# record length over 16640 -> t->why "a record of N bytes, over the TLS limit of 16640" and
# mbedtls_ssl_send_alert_message(FATAL, RECORD_OVERFLOW). The report has the diff.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"
need_cmd openssl

LOG_LEVEL=info attack_setup direct
HDR=$(stream_header "$ORG")

for k in k K; do
    attack_mark
    {
        sleep 0.7
        printf '%s\n' "$HDR"
        sleep 0.8
        printf '%s\n' "$k"
        sleep 1
    } | timeout 10 openssl s_client -connect "127.0.0.1:$PROXY_DIRECT_PORT" -alpn xmpp-client \
        -tls1_3 -servername "$ORG" -CAfile "$CA" >"$T/keyupdate-$k.out" 2>&1 || true
    grep -q KEYUPDATE "$T/keyupdate-$k.out" || fail "s_client did not send a KeyUpdate"
    expect_closes 1 'tls-error' 'KeyUpdate' opened
    log "KeyUpdate ('$k'): $(proxy_log_new | sed -n 's/.* close reason=\(.*\) from=.*/\1/p')"
done

for cmd in overflow-pre overflow-post; do
    attack_mark
    "$PY" "$LIB_DIR/tlsattack.py" "$cmd" --port "$PROXY_DIRECT_PORT" --domain "$ORG" --ca "$CA" \
        --expect-alert 22 >"$T/$cmd.out" 2>&1 || {
        cat "$T/$cmd.out"
        fail "$cmd: no record_overflow alert"
    }
    opened=
    [ "$cmd" = overflow-post ] && opened=opened
    expect_closes 1 'tls-error' 'record of [0-9]+ bytes' $opened
    log "$cmd: $(sed 's/^tlsattack: RESULT //' "$T/$cmd.out"); $(proxy_log_new | sed -n 's/.* close reason=\(.*\) from=.*/\1/p')"
done
stop_guard
pass
