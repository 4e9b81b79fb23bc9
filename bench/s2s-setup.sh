#!/usr/bin/env bash
# s2s-setup.sh: how long s2s-out takes from the backend's first byte to the answer that lets
# the backend's first stanza go (the proxy's `setup_ms` on its s2s-out open line): DNS-free
# (resolve.static), TCP + STARTTLS + TLS 1.3 + certificate verification + SASL EXTERNAL
# against a second proxy instance, fresh and with TLS resumption (the worker's ticket from the
# previous stream to the same remote). Loopback only; prints a table.
#
#   bench/s2s-setup.sh BUILD_DIR [ROUNDS] [RESUMED_PER_ROUND]    (defaults 5 and 10)
#
# The proxy (example.test) has an s2s-out listener; a scripted backend (tests/integration/
# rawxmpp.py) opens a jabberd2-style stream there and asks for example.test -> other.test.
# The remote is a private Prosody 0.12 with TLS (scripts/prosody-local.sh tls: certificate
# from the test CA, s2s_secure_auth, SASL EXTERNAL). Each round restarts the proxy (an empty
# ticket cache): its first stream is a full handshake, the next ones resume with the ticket
# Prosody gave. (Against another xmpp-tls-proxy nothing resumes: its s2s listeners issue no
# tickets, see tls.c.)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: bench/s2s-setup.sh BUILD_DIR [ROUNDS] [RESUMED_PER_ROUND]}
rounds=${2:-5}
per=${3:-10}
bin=$build/xmpp-tls-proxy
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }
certs=tests/certs
work=$(mktemp -d "${TMPDIR:-/tmp}/xtp-s2s-setup.XXXXXX")
pids=()
stop_prosody() { :; }
cleanup() {
    stop_prosody
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }

pb=$(port) oa=$(port) pa=$(port)
PROSODY_EXTRA="${PROSODY_EXTRA:-}" scripts/prosody-local.sh start "$work/prosody" other.test "$(port)" "$pb" tls >/dev/null
stop_prosody() { scripts/prosody-local.sh stop "$work/prosody" >/dev/null 2>&1 || true; }
cat >"$work/a.yaml" <<EOF
log: { level: info }
tls: { ca_file: $PWD/$certs/ca.crt }
domains:
  example.test: { cert: $PWD/$certs/example.test.crt, key: $PWD/$certs/example.test.key,
                  backend: { s2s: "127.0.0.1:$(port)" } }
listeners:
  - { name: s2s, listen: "127.0.0.1:$pa", kind: s2s }
  - { name: s2s-out, listen: "127.0.0.1:$oa", kind: s2s-out }
s2s: { state_file: $work/a.state, dialback_secret_file: $work/a.secret }
resolve: { static: { other.test: "127.0.0.1:$pb" } }
limits: { drain_timeout: 0s }
EOF

backend() { # one jabberd2-style outbound stream, until the proxy answers type='valid'
    /usr/bin/python3 tests/integration/rawxmpp.py --port "$oa" --timeout 10 \
        --send "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:server' xmlns:db='jabber:server:dialback'>" \
        --wait "<stream:stream" \
        --send "<db:result to='other.test' from='example.test'>0123456789abcdef0123456789abcdef01234567</db:result>" \
        --wait "type='valid'" --send '</stream:stream>' >/dev/null 2>&1
}
for r in $(seq "$rounds"); do
    : >"$work/a.log"
    "$bin" -c "$work/a.yaml" >"$work/a.log" 2>&1 &
    apid=$!
    pids+=("$apid")
    sleep 0.3 # no probe connection: it would be a session of its own
    for i in $(seq $((per + 1))); do backend || { echo "round $r stream $i failed" >&2; tail "$work/a.log" >&2; exit 1; }; done
    kill "$apid"
    wait "$apid" 2>/dev/null || true
    grep -o 'resumed=[a-z]* cert_sha256=[0-9a-f-]* setup_ms=[0-9]*' "$work/a.log" |
        sed -E 's/resumed=([a-z]+) cert_sha256=[^ ]* setup_ms=([0-9]+)/\1 \2/' >>"$work/samples"
done
/usr/bin/python3 - "$work/samples" "$rounds" "$per" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"s2s-out setup (backend's first byte -> <db:result type='valid'/>), {sys.argv[2]} rounds, "
      f"{sys.argv[3]} resumed streams per round")
print(f"{'handshake':<10} {'n':>4} {'min ms':>7} {'median':>7} {'max':>7}")
for kind, label in (("no", "fresh"), ("yes", "resumed")):
    v = [int(ms) for k, ms in rows if k == kind]
    if v:
        print(f"{label:<10} {len(v):>4} {min(v):>7} {statistics.median(v):>7} {max(v):>7}")
    else:
        print(f"{label:<10} {0:>4}")
EOF
