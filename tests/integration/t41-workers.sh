#!/usr/bin/env bash
# t41: several workers (issue 5: one loop per core, SO_REUSEPORT). With `workers: 2`:
#   - 24 concurrent Direct TLS sessions are spread over both loops (a session's id modulo the
#     number of workers is its worker), all of them reach jabberd2 and work;
#   - /status lists the sessions of both workers, /metrics sums them (xtp_sessions);
#   - limits.max_connections counts sessions of every worker: at the limit a new one is refused;
#   - SIGHUP reaches every worker: afterwards every new session gets the new certificate;
#   - SIGTERM drains both workers: every session left gets <system-shutdown/>, exit 0.
. "$(dirname "$0")/lib.sh"

need_cmd openssl curl
start_jabberd2 "$DOMAIN"
ADMIN_PORT=$(free_port)
PROXY_STARTTLS_PORT=$(free_port)
PROXY_DIRECT_PORT=$(free_port)
cp "$CERT" "$T/cert.pem"
cp "$KEY" "$T/key.pem"
chmod 600 "$T/key.pem"
cat >"$T/proxy.yaml" <<EOF
log: { level: info }
workers: 2
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
domains:
  $DOMAIN: { cert: $T/cert.pem, key: $T/key.pem, backend: { c2s: "127.0.0.1:$BACKEND_C2S_PORT" } }
listeners:
  - { name: c2s, listen: "127.0.0.1:$PROXY_STARTTLS_PORT", kind: c2s }
  - { name: c2s-direct, listen: "127.0.0.1:$PROXY_DIRECT_PORT", kind: c2s, tls: direct }
limits: { max_connections: 25, drain_timeout: 2s }
EOF
start_proxy "$T/proxy.yaml"
wait_port "$ADMIN_PORT" 5 || fail "no admin listener"
proxy_log_has 'running with .*2 workers' || fail "the proxy does not say it runs 2 workers"
HDR=$(stream_header "$DOMAIN")

N=24
for i in $(seq "$N"); do
    bg raw --port "$PROXY_DIRECT_PORT" --timeout 25 --tls --send "$HDR" --wait '</stream:features>' \
        --ready "$T/r$i" --wait '</stream:stream>' --expect '<mechanisms' \
        --expect-stream-error system-shutdown >"$T/s$i.out" 2>&1
    eval "pid$i=\$BG_PID"
done
wait_until 20 sh -c "[ \$(ls $T/r* 2>/dev/null | wc -l) -ge $N ]" || fail "not all $N sessions started"
curl -fsS "http://127.0.0.1:$ADMIN_PORT/status" >"$T/status.json" || fail "GET /status failed"
"$PY" - "$T/status.json" "$N" <<'EOF' || fail "/status does not show the sessions of both workers"
import json, sys
doc = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
assert doc["process"]["workers"] == 2, doc["process"]
live = [s for s in doc["sessions"] if s["listener"] == "c2s-direct"]
assert len(live) == n, (len(live), n)
per = {0: 0, 1: 0}
for s in live:
    per[s["id"] % 2] += 1
    assert s["tls_version"] in ("TLSv1.3", "TLSv1.2"), s
assert per[0] > 0 and per[1] > 0, per
print("sessions per worker:", per)
EOF
curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" >"$T/metrics" || fail "GET /metrics failed"
grep -Eq "^xtp_sessions\\{listener=\"c2s-direct\",kind=\"c2s\"\\} $N\$" "$T/metrics" ||
    fail "/metrics does not sum both workers: $(grep '^xtp_sessions{' "$T/metrics")"
log "$N sessions on both workers; /status and /metrics see them all"

# The limit counts both workers: 24 + 1 guard fills 25; the next is refused at once.
raw --port "$PROXY_STARTTLS_PORT" --timeout 5 --send "$HDR" --wait '</stream:features>' \
    --ready "$T/guard" --sleep 4 --expect '<starttls' >"$T/guard.out" 2>&1 &
GUARD=$!
wait_until 5 test -e "$T/guard" || fail "the 25th session did not start"
raw --port "$PROXY_STARTTLS_PORT" --timeout 3 --send "$HDR" --expect-closed \
    --expect-not '<stream:features' >"$T/over.out" 2>&1 || fail "a 26th session was not refused"
wait "$GUARD" || true
log "limits.max_connections counts the sessions of both workers"

# SIGHUP: both workers serve the new certificate.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$DOMAIN" \
    -keyout "$T/new.key" -out "$T/new.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\n' "$DOMAIN" >"$T/ext"
openssl x509 -req -in "$T/new.csr" -CA "$CA" -CAkey "$XTP_CERTS/ca.key" -CAcreateserial \
    -CAserial "$T/ca.srl" -days 30 -extfile "$T/ext" -out "$T/new.crt" 2>/dev/null
want=$(openssl x509 -in "$T/new.crt" -noout -fingerprint -sha256)
cp "$T/new.crt" "$T/cert.pem"
cp "$T/new.key" "$T/key.pem"
proxy_mark
kill -HUP "$PROXY_PID"
wait_proxy_log 'reloaded ' || fail "no reload line"
# SO_REUSEPORT hashes each new connection's ports: 12 connections reach both loops.
for i in $(seq 12); do
    got=$(timeout 10 openssl s_client -connect "127.0.0.1:$PROXY_DIRECT_PORT" -servername "$DOMAIN" \
        </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256)
    [ "$got" = "$want" ] || fail "connection $i after SIGHUP got the old certificate ($got)"
done
log "SIGHUP: 12 new connections all got the new certificate"

# SIGTERM: both workers drain for 2 s, then the sessions get <system-shutdown/>.
proxy_mark
kill -TERM "$PROXY_PID"
for i in $(seq "$N"); do
    pid=pid$i
    wait "${!pid}" || {
        cat "$T/s$i.out"
        fail "session $i did not end with <system-shutdown/>"
    }
done
wait_until 10 sh -c "! kill -0 $PROXY_PID 2>/dev/null" || fail "the proxy did not exit after the drain"
[ "$(proxy_log_count 'reason=shutdown')" -ge "$N" ] || fail "not every session closed for shutdown"
stop_proxy
log "SIGTERM: both workers drained and every session got <system-shutdown/>"
pass
