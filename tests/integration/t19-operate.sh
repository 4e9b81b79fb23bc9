#!/usr/bin/env bash
# t19: operating the proxy (issue 4), through real sessions:
#   - the admin listener: /metrics shows the live session (xtp_sessions) and its TLS version
#     and cipher (xtp_tls_handshakes_total); /status lists it with tls_version, cipher and
#     peer_auth; /healthz is 200; `xmpp-tls-proxy status -c FILE` prints it as a table;
#   - privileges: started as root with user/group, the process runs as nobody afterwards
#     (/proc/PID/status), and a private key readable by others is warned about;
#   - SIGHUP with a new certificate: new sessions get it while an old session keeps working;
#   - SIGHUP with a broken file: nothing changes, one log line says why;
#   - SIGTERM: no new connections, /healthz turns 503, a live session may finish during
#     limits.drain_timeout; one that does not gets <system-shutdown/> when it ends.
. "$(dirname "$0")/lib.sh"

need_cmd openssl curl
[ "$(id -u)" = 0 ] || skip "needs root to test the privilege drop"
getent passwd nobody >/dev/null || skip "no user nobody"
NOGROUP=$(id -gn nobody)

start_jabberd2 "$DOMAIN"
ADMIN_PORT=$(free_port)
: "${PROXY_STARTTLS_PORT:=$(free_port)}" "${PROXY_DIRECT_PORT:=$(free_port)}"
# nobody must read the certificate files after the drop (for reloads): a private copy.
chmod 711 "$T"
cp "$CERT" "$T/cert.pem"
cp "$KEY" "$T/key.pem"
chown nobody "$T/cert.pem" "$T/key.pem"
chmod 644 "$T/cert.pem"
chmod 640 "$T/key.pem" # group-readable on purpose: the proxy must warn

config() { # config DRAIN
    cat <<EOF
log: { level: info }
user: nobody
group: $NOGROUP
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
domains:
  $DOMAIN:
    cert: $T/cert.pem
    key: $T/key.pem
    backend: { c2s: "127.0.0.1:$BACKEND_C2S_PORT" }
listeners:
  - { name: c2s, listen: "127.0.0.1:$PROXY_STARTTLS_PORT", kind: c2s, tls: starttls }
  - { name: c2s-direct, listen: "127.0.0.1:$PROXY_DIRECT_PORT", kind: c2s, tls: direct }
limits: { drain_timeout: $1 }
EOF
}
config 4s >"$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
wait_port "$ADMIN_PORT" 5 || fail "the admin listener does not listen"
HDR=$(stream_header "$DOMAIN")
ADMIN=http://127.0.0.1:$ADMIN_PORT

# ---- privileges -------------------------------------------------------------------------------
uid=$(awk '/^Uid:/ {print $3}' "/proc/$PROXY_PID/status")
[ "$uid" = "$(id -u nobody)" ] || fail "the proxy runs as uid $uid, not nobody"
proxy_log_has 'dropped privileges to user=nobody' || fail "no log line for the privilege drop"
proxy_log_has 'private key .*key.pem has mode 0640' || fail "no warning for the group-readable key"
log "runs as nobody (uid $uid); the group-readable key was warned about"

# ---- a live session, seen by /metrics, /status and the status command --------------------------
bg raw --port "$PROXY_DIRECT_PORT" --timeout 20 --tls --send "$HDR" --wait '</stream:features>' \
    --ready "$T/held" --wait '</stream:stream>' --expect-closed >"$T/held.out" 2>&1
HELD=$BG_PID
wait_until 10 test -e "$T/held" || fail "the held session did not start"
curl -fsS "$ADMIN/healthz" >"$T/healthz" || fail "/healthz is not 200 while running"
curl -fsS "$ADMIN/metrics" >"$T/metrics" || fail "GET /metrics failed"
grep -Eq '^xtp_sessions\{listener="c2s-direct",kind="c2s"\} 1$' "$T/metrics" ||
    fail "/metrics: xtp_sessions for c2s-direct is not 1: $(grep '^xtp_sessions' "$T/metrics")"
grep -Eq '^xtp_tls_handshakes_total\{version="TLSv1\.3",cipher="TLS1-3-[A-Z0-9-]+"\} 1$' \
    "$T/metrics" || fail "/metrics: no TLS 1.3 handshake counted"
grep -q '^# TYPE xtp_session_end_total counter' "$T/metrics" || fail "/metrics: no end counter"
curl -fsS "$ADMIN/status" >"$T/status.json" || fail "GET /status failed"
"$PY" - "$T/status.json" <<'EOF' || fail "/status does not show the session as expected"
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["process"]["running_as_root"] is False, doc["process"]
live = [s for s in doc["sessions"] if s["listener"] == "c2s-direct"]
assert len(live) == 1, doc
s = live[0]
assert s["kind"] == "c2s" and s["domain"] == "example.test", s
assert s["tls_version"] == "TLSv1.3" and s["cipher"].startswith("TLS1-3-"), s
assert s["peer_auth"] == "none" and s["peer"].startswith("127.0.0.1:"), s
EOF
"$XTP_BIN" status -c "$T/proxy.yaml" >"$T/status.txt" 2>&1 || fail "the status command failed"
grep -Eq 'c2s-direct +c2s +127\.0\.0\.1:[0-9]+ +example\.test .*TLSv1\.3' "$T/status.txt" ||
    fail "the status table does not list the session: $(cat "$T/status.txt")"
log "/metrics, /status and 'xmpp-tls-proxy status' show the session"

# ---- SIGHUP with a new certificate ------------------------------------------------------------
fingerprint() {
    timeout 10 openssl s_client -connect "127.0.0.1:$PROXY_DIRECT_PORT" -servername "$DOMAIN" \
        </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256
}
old_fp=$(fingerprint)
[ -n "$old_fp" ] || fail "no certificate from the proxy"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$DOMAIN" \
    -keyout "$T/new.key" -out "$T/new.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$DOMAIN" >"$T/ext"
openssl x509 -req -in "$T/new.csr" -CA "$CA" -CAkey "$XTP_CERTS/ca.key" -CAcreateserial \
    -CAserial "$T/ca.srl" -days 30 -extfile "$T/ext" -out "$T/new.crt" 2>/dev/null ||
    fail "cannot make a new certificate"
cp "$T/new.crt" "$T/cert.pem"
cp "$T/new.key" "$T/key.pem"
chmod 600 "$T/key.pem"
proxy_mark
kill -HUP "$PROXY_PID"
wait_proxy_log 'reloaded .*proxy\.yaml' || fail "no reload line after SIGHUP"
new_fp=$(fingerprint)
[ -n "$new_fp" ] && [ "$new_fp" != "$old_fp" ] || fail "new sessions still get the old certificate"
kill -0 "$HELD" 2>/dev/null || fail "the old session ended at the reload"
log "SIGHUP: new sessions get the new certificate, the old session is still there"

# ---- SIGHUP with a broken file changes nothing ------------------------------------------------
cp "$T/proxy.yaml" "$T/good.yaml"
printf 'domains: [\n' >>"$T/proxy.yaml"
proxy_mark
kill -HUP "$PROXY_PID"
wait_proxy_log 'reload failed, keeping the running configuration: .*proxy\.yaml:[0-9]+' ||
    fail "no log line for the broken reload"
[ "$(fingerprint)" = "$new_fp" ] || fail "the broken reload changed what new sessions get"
cp "$T/good.yaml" "$T/proxy.yaml"
log "SIGHUP with a broken file: refused with FILE:LINE, nothing changed"

# ---- SIGTERM drains ---------------------------------------------------------------------------
# A second session that ends by itself during the drain, and the held one that does not.
bg raw --port "$PROXY_DIRECT_PORT" --timeout 10 --tls --send "$HDR" --wait '</stream:features>' \
    --ready "$T/quick" --sleep 1.5 --send '</stream:stream>' --expect '</stream:stream>' \
    --expect-closed >"$T/quick.out" 2>&1
QUICK=$BG_PID
wait_until 10 test -e "$T/quick" || fail "the second session did not start"
proxy_mark
kill -TERM "$PROXY_PID"
wait_proxy_log 'draining 2 sessions' || fail "no drain line after SIGTERM"
sleep 0.3
port_listening "$PROXY_DIRECT_PORT" && fail "the listener still accepts during the drain"
code=$(curl -s -o /dev/null -w '%{http_code}' "$ADMIN/healthz" || true)
[ "$code" = 503 ] || fail "/healthz answered $code during the drain, not 503"
wait "$QUICK" || {
    cat "$T/quick.out"
    fail "a session could not finish during the drain"
}
wait "$HELD" 2>/dev/null || true
grep -q "system-shutdown" "$T/held.out" || {
    cat "$T/held.out"
    fail "the session left after limits.drain_timeout did not get <system-shutdown/>"
}
wait_until 8 sh -c "! kill -0 $PROXY_PID 2>/dev/null" || fail "the proxy did not exit after the drain"
proxy_log_has 'limits.drain_timeout reached: closing 1 sessions' || fail "no line at the end of the drain"
stop_proxy
log "SIGTERM: one session finished in the drain, the other got <system-shutdown/>"
pass
