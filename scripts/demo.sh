#!/bin/bash
# demo.sh: what `make run` calls after building. Runs the proxy in front of a private jabberd2 on
# this machine, with throwaway certificates, until Ctrl-C.
#
#   scripts/demo.sh BUILD
#
# BUILD is the build folder holding the xmpp-tls-proxy binary (override with XTP_BIN). Creates
# BUILD/demo/certs (scripts/gen-certs.sh: ca.crt, example.test.crt, example.test.key; kept
# across runs so an imported CA stays valid) and starts jabberd2 from BUILD/demo/jabberd2
# (scripts/jabberd2-local.sh: c2s on 127.0.0.1:15222, domain example.test, users alice/secret
# and bob/secret), then runs the proxy in the foreground with config/demo.yaml: STARTTLS on 5222,
# Direct TLS on 5223. Nothing is written into the source tree. Ctrl-C or SIGTERM stops the
# proxy and jabberd2.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOMAIN=example.test
BACKEND_PORT=15222
STARTTLS_PORT=5222
DIRECT_PORT=5223

die() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: scripts/demo.sh BUILD_DIR"
[ -d "$1" ] || die "no build folder $1 (build first: make)"
BUILD=$(cd "$1" && pwd)
BIN=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
CONFIG=$SRC/config/demo.yaml
DEMO=$BUILD/demo
CERTS=$DEMO/certs
if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi

[ -x "$BIN" ] || die "$BIN not found or not executable (build first: make)"
[ -r "$CONFIG" ] || die "$CONFIG not found"
[ -x "$SRC/scripts/gen-certs.sh" ] || [ -r "$SRC/scripts/gen-certs.sh" ] ||
    die "$SRC/scripts/gen-certs.sh not found"

# Refuse busy ports up front: jabberd2 only logs a failed bind and keeps running.
busy=""
for p in "$STARTTLS_PORT" "$DIRECT_PORT" "$BACKEND_PORT"; do
    if ! "$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("0.0.0.0", int(sys.argv[1])))
except OSError: sys.exit(1)' "$p"; then
        busy="$busy $p"
    fi
done
[ -z "$busy" ] || die "port(s)$busy already in use; the demo needs 5222 (STARTTLS), 5223 (Direct TLS) and 15222 (jabberd2). Stop what holds them (ss -ltnp) and retry."

mkdir -p "$CERTS"
if [ ! -s "$CERTS/ca.crt" ] || [ ! -s "$CERTS/$DOMAIN.crt" ] || [ ! -s "$CERTS/$DOMAIN.key" ]; then
    bash "$SRC/scripts/gen-certs.sh" "$CERTS" "$DOMAIN" >/dev/null ||
        die "scripts/gen-certs.sh $CERTS $DOMAIN failed"
fi
for f in ca.crt "$DOMAIN.crt" "$DOMAIN.key"; do
    [ -s "$CERTS/$f" ] || die "scripts/gen-certs.sh did not create $CERTS/$f"
done

# config/demo.yaml names its certificates relative to config/ as ../build/demo/certs/. For
# another build folder, run a copy (in BUILD/demo) that points at this run's certificates.
if [ "$(cd "$SRC/build/demo/certs" 2>/dev/null && pwd)" != "$CERTS" ]; then
    sed "s#\.\./build/demo/certs/#$CERTS/#g" "$CONFIG" >"$DEMO/demo.yaml"
    CONFIG=$DEMO/demo.yaml
fi

PROXY_PID=
cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    set +e
    if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
        kill -TERM "$PROXY_PID" 2>/dev/null
        for ((i = 0; i < 50; i++)); do # 5 s for a graceful drain
            kill -0 "$PROXY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PROXY_PID" 2>/dev/null
    fi
    [ -z "$PROXY_PID" ] || wait "$PROXY_PID" 2>/dev/null
    "$SRC/scripts/jabberd2-local.sh" stop "$DEMO/jabberd2"
    printf '\ndemo: stopped the proxy and jabberd2 (logs: %s)\n' "$DEMO" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$SRC/scripts/jabberd2-local.sh" start "$DEMO/jabberd2" "$DOMAIN" "$BACKEND_PORT" >/dev/null

"$BIN" -c "$CONFIG" </dev/null &
PROXY_PID=$!
for p in "$STARTTLS_PORT" "$DIRECT_PORT"; do
    for ((i = 0; i < 100; i++)); do # 10 s
        [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && break
        kill -0 "$PROXY_PID" 2>/dev/null || die "the proxy exited at start-up (config: $CONFIG)"
        sleep 0.1
    done
    [ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || die "the proxy does not listen on port $p"
done

cat >&2 <<EOF

  xmpp-tls-proxy demo is running (Ctrl-C stops it)
    domain       $DOMAIN   accounts alice@$DOMAIN / secret, bob@$DOMAIN / secret
    STARTTLS     127.0.0.1:$STARTTLS_PORT  (TLS required before anything else)
    Direct TLS   127.0.0.1:$DIRECT_PORT  (XEP-0368, ALPN xmpp-client)
    backend      jabberd2 c2s on 127.0.0.1:$BACKEND_PORT (plaintext, loopback only)
    CA to trust  $CERTS/ca.crt
    logs         proxy below; jabberd2 in $DEMO/jabberd2/*.log

  Try:
    openssl s_client -connect 127.0.0.1:$STARTTLS_PORT -starttls xmpp -xmpphost $DOMAIN \\
        -CAfile $CERTS/ca.crt -verify_hostname $DOMAIN
    /usr/bin/python3 $SRC/tests/integration/xmpp_client.py --mode starttls --port $STARTTLS_PORT \\
        --ca $CERTS/ca.crt --domain $DOMAIN
  An XMPP client needs a host override: server 127.0.0.1, port $STARTTLS_PORT (or $DIRECT_PORT with
  Direct TLS), and to trust the CA above.

EOF

# Foreground until the proxy ends or a signal arrives (the traps then stop everything).
rc=0
wait "$PROXY_PID" || rc=$?
PROXY_PID=
printf 'demo: the proxy exited with status %s\n' "$rc" >&2
exit "$rc"
