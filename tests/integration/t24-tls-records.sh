#!/bin/bash
# t24-tls-records: hostile TLS records, on Direct TLS and after STARTTLS. A record header
# claiming 16384+256+1 bytes as the first record and one claiming 18433 bytes in the middle of
# a relayed session (RFC 8446 §5.1/§5.2: more than any record may hold) end the session with a
# close line reason=tls-error, and none of the oversized record reaches the backend. A TLS 1.2
# client-initiated renegotiation (openssl s_client 'R') is refused (RFC 9325 §3.5: the proxy
# never renegotiates; the client gives up). A TLS 1.3 KeyUpdate (s_client 'k' and 'K'), which
# mbedTLS 3.6 cannot process, ends the session cleanly with one close line (which line exactly
# is checked by t27-tls-clear-reasons.sh). Data after the peer's
# close_notify (a stanza in plaintext and a forged application-data record) is never
# forwarded: the stanza sent before close_notify is, which shows the pipe was open. Each
# session logs exactly its open and close lines; the proxy stays alive, with flat memory, and a
# logged-in session keeps working. And the other side of the rule: a record of the full 16,384
# bytes from a standard client (Python's OpenSSL), over TLS 1.2 and 1.3, is read and relayed
# (mbedTLS builds with small buffers must still accept what any peer may send).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"
need_cmd openssl

LOG_LEVEL=info attack_setup starttls
HDR=$(stream_header "$ORG")

tlsattack() { # NAME LISTENER ARGS...
    local name=$1 lst=$2 out=$T/$1-$2.out args=(--port "$PROXY_DIRECT_PORT")
    shift 2
    [ "$lst" = starttls ] && args=(--port "$PROXY_STARTTLS_PORT" --starttls)
    "$PY" "$LIB_DIR/tlsattack.py" "$@" "${args[@]}" --domain "$ORG" --ca "$CA" >"$out" 2>&1 || {
        cat "$out"
        fail "$name over $lst"
    }
    log "$lst: $(sed 's/^tlsattack: RESULT //' "$out")"
}

# s_client_cmd NAME LISTENER VERSION CMD: a TLS session that opens the stream, types the
# s_client command letter CMD, then tries a stanza; stdin ends after 2.5 s.
s_client_cmd() {
    local name=$1 lst=$2 ver=$3 cmd=$4 out=$T/$1-$2.out args
    if [ "$lst" = starttls ]; then
        args=(-connect "127.0.0.1:$PROXY_STARTTLS_PORT" -starttls xmpp -xmpphost "$ORG")
    else
        args=(-connect "127.0.0.1:$PROXY_DIRECT_PORT" -alpn xmpp-client)
    fi
    {
        sleep 0.7
        printf '%s\n' "$HDR"
        sleep 0.8
        printf '%s\n' "$cmd"
        sleep 1
        printf '%s\n' "<message to='nobody@$ORG'><body>after-$name</body></message>"
        sleep 0.5
    } | timeout 10 openssl s_client "${args[@]}" "$ver" -servername "$ORG" -CAfile "$CA" \
        >"$out" 2>&1 || true
    grep -q "from='$ORG' id='rec" "$out" || fail "$name over $lst: the stream never opened: $(tail -3 "$out")"
    log "$lst: $name: $(grep -Eio 'RENEGOTIATING|KEYUPDATE' "$out" | head -1), then $(grep -Eio 'error:[0-9A-F]+:[^:]*:[^:]*:[^:]*|^DONE|closed' "$out" | head -1)"
}

# full_record VERSION: a Direct TLS session that sends one stanza of 16,000 bytes in a single
# full-size record, then ends its stream; the stanza must reach the backend.
full_record() {
    local ver=$1
    "$PY" - "$PROXY_DIRECT_PORT" "$ORG" "$CA" "$ver" "$HDR" <<'EOF' >"$T/full-$ver.out" 2>&1 ||
import socket, ssl, sys, time
port, host, ca, ver, hdr = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
v = ssl.TLSVersion.TLSv1_2 if ver == "1.2" else ssl.TLSVersion.TLSv1_3
ctx.minimum_version = ctx.maximum_version = v
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=5),
                    server_hostname=host)
s.sendall(hdr.encode())
got = b""
while b"</stream:features>" not in got:
    d = s.recv(65536)
    if not d:
        sys.exit("closed before the features")
    got += d
body = "FULL-RECORD-%s-" % ver
stanza = "<message to='nobody@%s'><body>%s%s</body></message>" % (
    host, body, "x" * (16000 - len(body)))
s.sendall(stanza.encode())  # one write of < 16384 bytes: one record
time.sleep(0.5)
s.sendall(b"</stream:stream>")
s.settimeout(3)
try:
    while s.recv(65536):
        pass
except (OSError, ssl.SSLError):
    pass
print("sent", len(stanza), "bytes over", s.version())
EOF
        fail "full record over TLS $ver: $(tail -3 "$T/full-$ver.out")"
    recorder_has "FULL-RECORD-$ver-" || fail "the full-size TLS $ver record never reached the backend"
    log "a full-size record over TLS $ver was relayed ($(cat "$T/full-$ver.out"))"
}
for ver in 1.2 1.3; do
    attack_mark
    full_record "$ver"
    expect_closes 1 'done|peer-eof' . opened
done

for round in 1 2; do
    [ "$round" = 2 ] && rss0=$(rss_kib)
    for lst in direct starttls; do
        attack_mark
        tlsattack overflow-first "$lst" overflow-pre
        expect_closes 1 tls-error 'error=ETLS'

        attack_mark
        tlsattack overflow-relay "$lst" overflow-post --marker OVERSIZED-RECORD
        expect_closes 1 tls-error 'error=ETLS' opened

        attack_mark
        tlsattack after-close-notify "$lst" after-close --marker-before PIPE-WAS-OPEN \
            --marker AFTER-CLOSE-NOTIFY
        expect_closes 1 'peer-eof|done' . opened
        recorder_has PIPE-WAS-OPEN || fail "after-close-notify over $lst: the stanza before close_notify never reached the backend"

        attack_mark
        s_client_cmd renegotiation "$lst" -tls1_2 R
        grep -q RENEGOTIATING "$T/renegotiation-$lst.out" || fail "s_client did not try to renegotiate"
        expect_closes 1 'tls-error|peer-eof|done' . opened
        grep -Eq 'no renegotiation|alert' "$T/renegotiation-$lst.out" ||
            fail "renegotiation over $lst: no refusal seen by the client: $(tail -5 "$T/renegotiation-$lst.out")"

        for k in k K; do
            attack_mark
            s_client_cmd "keyupdate-$k" "$lst" -tls1_3 "$k"
            grep -q KEYUPDATE "$T/keyupdate-$k-$lst.out" || fail "s_client did not send a KeyUpdate"
            expect_closes 1 'tls-error|peer-eof|done' . opened
        done
    done
done

for m in OVERSIZED-RECORD AFTER-CLOSE-NOTIFY; do
    if recorder_has "$m"; then
        fail "the backend received '$m', sent where the session had to be over"
    fi
done
log "the backend got the stanzas sent before close_notify and nothing after an attack"
rss_check "over the second round" "$rss0" 1024
proxy_alive || fail "the proxy died"
stop_guard
[ "$(jabberd2_connects)" = 1 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected the guard's only"
pass
