#!/usr/bin/env bash
# t33: listeners behind a TCP load balancer (issue 4, scale-out): with proxy_protocol: true the
# proxy takes the client's address from the PROXY header, so its logs show the real client:
#   - HAProxy (Debian's package, TCP mode, send-proxy-v2) in front of a Direct TLS listener: a
#     client connecting from 127.0.0.5 appears as 127.0.0.5 in the open and close lines;
#   - a PROXY v1 header written by hand before a STARTTLS stream: 192.0.2.7:4444 in the log;
#   - a connection without the header is closed with a log line saying why, and the backend
#     never sees it.
. "$(dirname "$0")/lib.sh"

need_cmd haproxy
start_jabberd2 "$DOMAIN"
PROXY_STARTTLS_PORT=$(free_port)
PROXY_DIRECT_PORT=$(free_port)
HAPROXY_PORT=$(free_port)
cat >"$T/proxy.yaml" <<EOF
log: { level: debug }
domains:
  $DOMAIN: { cert: $CERT, key: $KEY, backend: { c2s: "127.0.0.1:$BACKEND_C2S_PORT" } }
listeners:
  - { name: c2s, listen: "127.0.0.1:$PROXY_STARTTLS_PORT", kind: c2s, proxy_protocol: true }
  - { name: c2s-direct, listen: "127.0.0.1:$PROXY_DIRECT_PORT", kind: c2s, tls: direct,
      proxy_protocol: true }
limits: { handshake_timeout: 3s, drain_timeout: 0s }
EOF
start_proxy "$T/proxy.yaml"
cat >"$T/haproxy.cfg" <<EOF
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend xmpps
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend proxies
backend proxies
    server xtp 127.0.0.1:$PROXY_DIRECT_PORT send-proxy-v2
EOF
haproxy -c -f "$T/haproxy.cfg" >/dev/null 2>&1 || fail "haproxy rejects the test configuration"
bg haproxy -db -f "$T/haproxy.cfg"
wait_port "$HAPROXY_PORT" 5 || fail "haproxy does not listen"
HDR=$(stream_header "$DOMAIN")

# 1. Through HAProxy (PROXY v2) from 127.0.0.5.
proxy_mark
raw --port "$HAPROXY_PORT" --bind 127.0.0.5 --tls --send "$HDR" --wait '</stream:features>' \
    --send '</stream:stream>' --expect '<mechanisms' >"$T/v2.out" 2>&1 || {
    cat "$T/v2.out"
    fail "no stream through HAProxy"
}
wait_proxy_log 'listener=c2s-direct peer=127\.0\.0\.5:[0-9]+ .* close reason=' ||
    fail "the close line does not show the client 127.0.0.5: $(proxy_log_new | grep close)"
proxy_log_new | grep -q 'PROXY header from 127.0.0.1:' || fail "no debug line for the v2 header"
log "HAProxy send-proxy-v2: the log shows the client 127.0.0.5"

# 2. PROXY v1 by hand, then STARTTLS.
proxy_mark
raw --port "$PROXY_STARTTLS_PORT" --send $'PROXY TCP4 192.0.2.7 127.0.0.1 4444 5222\r\n'"$HDR" \
    --wait '</stream:features>' --send "$STARTTLS" --starttls --send "$HDR" \
    --wait '</stream:features>' --send '</stream:stream>' --expect PLAIN >"$T/v1.out" 2>&1 || {
    cat "$T/v1.out"
    fail "no STARTTLS stream after a PROXY v1 header"
}
wait_proxy_log 'listener=c2s peer=192\.0\.2\.7:4444 .* close reason=' ||
    fail "the close line does not show 192.0.2.7:4444"
log "PROXY v1: the log shows 192.0.2.7:4444"

# 3. No header: closed, one line, nothing reached jabberd2.
jabberd2_mark
proxy_mark
raw --port "$PROXY_STARTTLS_PORT" --send "$HDR" --expect-closed --expect-not '<stream:features' \
    >"$T/none.out" 2>&1 || {
    cat "$T/none.out"
    fail "a stream without PROXY header was not closed"
}
wait_proxy_log 'close reason=peer-protocol .*no valid PROXY protocol header' ||
    fail "no close line for the missing header"
[ "$(jabberd2_connects)" = 0 ] || fail "the backend saw a connection without PROXY header"
log "no PROXY header: closed with a reason, the backend saw nothing"
pass
