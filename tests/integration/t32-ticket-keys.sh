#!/usr/bin/env bash
# t32: interchangeable instances (issue 4, scale-out): two proxies sharing tls.ticket_key_file
# resume each other's TLS sessions (TLS 1.2 tickets and TLS 1.3 PSK), a third one with its
# own keys does not; a key file that is too short is refused at start with FILE:LINE.
. "$(dirname "$0")/lib.sh"

need_cmd openssl
start_jabberd2 "$DOMAIN"
openssl rand -hex 32 >"$T/ticket.key"
chmod 600 "$T/ticket.key"

# proxy_config FILE PORT [KEYFILE]: a Direct TLS c2s listener on PORT.
proxy_config() {
    cat >"$1" <<EOF
log: { level: info }
tls: { ${3:+ticket_key_file: $3} }
domains:
  $DOMAIN: { cert: $CERT, key: $KEY, backend: { c2s: "127.0.0.1:$BACKEND_C2S_PORT" } }
listeners:
  - { name: c2s-direct, listen: "127.0.0.1:$2", kind: c2s, tls: direct }
limits: { drain_timeout: 0s }
EOF
}
PORTS=()
PIDS=()
for n in a b c; do
    port=$(free_port)
    PORTS+=("$port")
    if [ "$n" = c ]; then proxy_config "$T/$n.yaml" "$port"; else
        proxy_config "$T/$n.yaml" "$port" "$T/ticket.key"
    fi
    "$XTP_BIN" -c "$T/$n.yaml" </dev/null >>"$T/$n.log" 2>&1 &
    PIDS+=("$!")
    _LIB_BG+=("$!")
    wait_port "$port" 10 || fail "proxy $n does not listen"
done
PROXY_LOG=$T/a.log

# session VERSION PORT OUT [sess_in]: one Direct TLS session that stays a second (so that the
# TLS 1.3 NewSessionTicket arrives), saving the session to $T/sess.VERSION.
session() {
    local v=$1 port=$2 out=$3 in=${4:-}
    (sleep 1) | timeout 10 openssl s_client "-$v" -connect "127.0.0.1:$port" \
        -servername "$DOMAIN" -CAfile "$CA" -alpn xmpp-client \
        ${in:+-sess_in "$in"} -sess_out "$T/sess.$v.new" >"$out" 2>&1 || true
    if [ -s "$T/sess.$v.new" ]; then mv "$T/sess.$v.new" "$T/sess.$v"; fi
}
for v in tls1_2 tls1_3; do
    session "$v" "${PORTS[0]}" "$T/$v.a.out"
    [ -s "$T/sess.$v" ] || fail "$v: no session saved from proxy a"
    grep -q '^New,' "$T/$v.a.out" || fail "$v: the first session was not a new one"
    cp "$T/sess.$v" "$T/sess.$v.first"
    session "$v" "${PORTS[1]}" "$T/$v.b.out" "$T/sess.$v.first"
    grep -q '^Reused,' "$T/$v.b.out" || {
        grep -E '^(New|Reused),|Protocol' "$T/$v.b.out"
        fail "$v: proxy b did not resume a session of proxy a (shared ticket_key_file)"
    }
    session "$v" "${PORTS[2]}" "$T/$v.c.out" "$T/sess.$v.first"
    grep -q '^New,' "$T/$v.c.out" || fail "$v: proxy c (own keys) resumed a foreign ticket"
    log "$v: a's ticket resumes on b (shared key file), not on c"
done

# A secret that is too short is a configuration error with its line.
printf 'short\n' >"$T/short.key"
proxy_config "$T/bad.yaml" "$(free_port)" "$T/short.key"
if "$XTP_BIN" --check -c "$T/bad.yaml" >"$T/bad.out" 2>&1; then
    fail "--check accepted a 5-byte ticket key file"
fi
grep -q "bad.yaml:2: tls.ticket_key_file: .*must hold 32 to 4096 bytes" "$T/bad.out" ||
    fail "unexpected message: $(cat "$T/bad.out")"
for pid in "${PIDS[@]}"; do
    stop_pid "$pid" 5
    [ "$STOP_KILLED" = 0 ] && [ "$STOP_STATUS" = 0 ] || fail "a proxy did not stop cleanly"
done
grep -Eq 'runtime error|Sanitizer' "$T"/[abc].log && fail "a sanitizer complained"
pass
