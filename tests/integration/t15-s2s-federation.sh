#!/usr/bin/env bash
# t15: federation through two proxies (issue 3, test 1).
#
#   alice@example.test ─ jabberd2 ─(plaintext, loopback)─ proxy A ══TLS══ proxy B
#                                   ─(plaintext, loopback)─ Prosody (plain) ─ bob@other.test
#
# jabberd2 and Prosody speak plaintext dialback only, and only with their own proxy. Their
# outbound s2s reaches their proxy's s2s-out through DNS (dnsmasq on loopback serves the SRV
# records: jabberd2's udns reads NAMESERVERS/RES_OPTIONS, Prosody's resolver is pointed at it).
# The proxies find each other through resolve.static, verify each other's certificate against
# the test CA, authenticate with SASL EXTERNAL, and answer their backend's dialback themselves.
# Messages go both ways with slixmpp. Taps between each proxy and its backend show that the
# backends see loopback plaintext only (and the proxy's dialback key, never a remote's), the
# proxies' logs show TLS 1.3 and pkix on every stream, and each proxy remembers the other's
# certificate fingerprint in its state file.
. "$(dirname "$0")/lib.sh"

need_cmd openssl ss
PA=$(free_port)   # proxy A s2s (example.test)
OA=$(free_port)   # proxy A s2s-out
PB=$(free_port)   # proxy B s2s (other.test)
OB=$(free_port)   # proxy B s2s-out
start_dnsmasq "" $(dns_xmpp_server other.test "$OA" out-a.test) \
    $(dns_xmpp_server example.test "$OB" out-b.test)
start_jabberd2_s2s example.test
JA_C2S=$BACKEND_C2S_PORT JA_S2S=$BACKEND_S2S_PORT JA_DIR=$JABBERD2_DIR
start_prosody other.test plain
start_tap jabberd2 "$JA_S2S"
TAP_A=$TAP_PORT
start_tap prosody "$PROSODY_S2S_PORT"
TAP_B=$TAP_PORT

# proxy_config NAME DOMAIN S2S OUT BACKEND REMOTE REMOTE_PORT
proxy_config() {
    cat >"$T/$1.yaml" <<EOF
log: { level: debug }
tls: { ca_file: $CA, min_version: "1.2" }
domains:
  $2:
    cert: $XTP_CERTS/$2.crt
    key: $XTP_CERTS/$2.key
    backend: { s2s: "127.0.0.1:$5" }
listeners:
  - { name: s2s, listen: "127.0.0.1:$3", kind: s2s }
  - { name: s2s-out, listen: "127.0.0.1:$4", kind: s2s-out }
s2s: { verify: required, state_file: $T/$1.state, dialback_secret_file: $T/$1.secret }
resolve: { static: { $6: "127.0.0.1:$7" } }
limits: { drain_timeout: 0s }
EOF
}
proxy_config a example.test "$PA" "$OA" "$TAP_A" other.test "$PB"
ADMIN_A=$(free_port)
printf 'admin: { listen: "127.0.0.1:%s" }\n' "$ADMIN_A" >>"$T/a.yaml"
proxy_config b other.test "$PB" "$OB" "$TAP_B" example.test "$PA"
[ -x "$XTP_BIN" ] || skip "proxy binary not built: $XTP_BIN"
start_two() {
    "$XTP_BIN" -c "$T/a.yaml" </dev/null >>"$T/a.log" 2>&1 &
    PID_A=$!
    "$XTP_BIN" -c "$T/b.yaml" </dev/null >>"$T/b.log" 2>&1 &
    PID_B=$!
    for p in "$PA" "$OA" "$PB" "$OB"; do wait_port "$p" 10 || fail "a proxy does not listen on $p"; done
}
stop_two() {
    stop_pid "$PID_A" 5
    [ "$STOP_KILLED" = 0 ] || fail "proxy A needed SIGKILL"
    stop_pid "$PID_B" 5
    [ "$STOP_KILLED" = 0 ] || fail "proxy B needed SIGKILL"
    PID_A= PID_B=
}
trap_more() { [ -z "${PID_A:-}" ] || kill "$PID_A" "$PID_B" 2>/dev/null || true; }
PROXY_LOG=$T/a.log # what lib.sh prints on failure: proxy A; proxy B's log is in $T/b.log

chat() {
    s2s_chat --a alice@example.test --a-addr "127.0.0.1:$JA_C2S" --a-tls plain \
        --b bob@other.test --b-addr "127.0.0.1:$PROSODY_C2S_PORT" --b-tls plain \
        --count "$1" --timeout 40 --wait 30 >"$T/chat.$2.out" 2>&1 || {
        cat "$T/chat.$2.out"
        tail -n 30 "$T/b.log"
        trap_more
        fail "messages did not arrive both ways ($2)"
    }
    cat "$T/chat.$2.out"
}

start_two
chat 5 fresh
# Both proxies: an authenticated inbound and an outbound stream, TLS 1.3 with pkix.
for p in a b; do
    grep -Eq 'listener=s2s .* open .*auth=pkix tls=TLSv1\.3' "$T/$p.log" ||
        fail "proxy $p: no s2s-in stream authenticated by certificate over TLS 1.3"
    grep -Eq 'listener=s2s-out .* open .*auth=pkix as=sasl-external tls=TLSv1\.3' "$T/$p.log" ||
        fail "proxy $p: no s2s-out stream with SASL EXTERNAL over TLS 1.3"
    grep -Eq 'answered the backend.s dialback check .*: valid' "$T/$p.log" ||
        fail "proxy $p: the backend's dialback callback was not answered valid"
done
# The backends saw plaintext XMPP only: no TLS record (0x16 0x03) and our dialback result.
for t in jabberd2 prosody; do
    grep -q '\\x16\\x03' "$T/tap-$t.log" && fail "$t received TLS bytes"
    tap_log_has "$t" "C: .*<db:result from='[a-z.]+' to='[a-z.]+'>[0-9a-f]{64}</db:result>" ||
        fail "$t did not get the proxy's dialback key"
done
grep -E 'setup_ms=' "$T/a.log" "$T/b.log" | sed -E 's/.*(listener=s2s-out).*(remote=[a-z.]+).*(resumed=[a-z]+).*(setup_ms=[0-9]+).*/  \1 \2 \3 \4/'

# /status and /metrics show the s2s streams with how the remote was authenticated (issue 4).
curl -fsS "http://127.0.0.1:$ADMIN_A/status" >"$T/status.json" || fail "GET /status failed"
"$PY" - "$T/status.json" <<'EOF' || fail "/status does not show the s2s sessions as expected"
import json, sys
doc = json.load(open(sys.argv[1]))
by_kind = {}
for s in doc["sessions"]:
    by_kind.setdefault(s["kind"], []).append(s)
for kind in ("s2s", "s2s-out"):
    live = [s for s in by_kind.get(kind, []) if s["remote_domain"] == "other.test"]
    assert live, (kind, doc)
    s = live[0]
    assert s["peer_auth"] == "pkix" and s["tls_version"] == "TLSv1.3", s
    cert = s["peer_cert"]
    assert cert and len(cert["sha256"].replace(":", "")) == 64, s
    assert any("other.test" in n for n in cert["sans"]), s
EOF
curl -fsS "http://127.0.0.1:$ADMIN_A/metrics" >"$T/metrics" || fail "GET /metrics failed"
grep -Eq '^xtp_peer_auth_total\{method="pkix",result="ok"\} [1-9]' "$T/metrics" ||
    fail "/metrics: no successful pkix authentication counted"
grep -Eq '^xtp_sessions\{listener="s2s-out",kind="s2s-out"\} 1$' "$T/metrics" ||
    fail "/metrics: the s2s-out session is not counted"
log "/status and /metrics show both s2s streams, authenticated by certificate"

# The remote certificates were remembered (RFC 7590 §3.7).
grep -q '^other.test ' "$T/a.state" || fail "proxy A did not remember other.test's certificate"
grep -q '^example.test ' "$T/b.state" || fail "proxy B did not remember example.test's certificate"

stop_two
grep -Eq 'reason=(done|shutdown|backend-eof|peer-eof)' "$T/a.log" || fail "proxy A: no clean close"
grep -Eq 'runtime error|AddressSanitizer|LeakSanitizer' "$T/a.log" "$T/b.log" &&
    fail "a sanitizer complained"
pass
