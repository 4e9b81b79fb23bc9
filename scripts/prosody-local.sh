#!/bin/bash
# prosody-local.sh: run a private Prosody 0.12 (Debian package) for one domain, on loopback,
# without root setup and without touching /etc or /var. The modern remote peer in the s2s tests
# (design.md §5; docs/testing-s2s.md says how the s2s harness fits together).
#
#   prosody-local.sh start DIR DOMAIN C2S_PORT S2S_PORT [plain|tls]
#   prosody-local.sh stop DIR
#
# start: writes DIR/prosody.cfg.lua (run_as_root, data in DIR/data, pidfile DIR/prosody.pid,
# log DIR/prosody.log, listening on 127.0.0.1 only: c2s on C2S_PORT, s2s on S2S_PORT, no HTTP),
# registers the users with prosodyctl (PROSODY_USERS, default "alice:secret bob:secret"), starts
# `prosody -F` in the background (pid in DIR/pid) and returns once both ports listen (asked of
# the kernel with ss: no probe connection shows in the log) and, at log level debug, Prosody's
# DNS resolver is up (its "Setting up net.server event handling" line). On
# success it prints one line: where the log is. On failure it stops what it started, prints the
# log's tail and exits 1. Busy ports are refused up front.
#
# Modes:
#   plain (default)  no certificates, no mod_tls: c2s and s2s in plaintext, s2s authenticated by
#                    dialback only (s2s_require_encryption = false, s2s_secure_auth = false);
#                    c2s allows SASL PLAIN without TLS.
#   tls              mod_tls with the certificate PROSODY_CERT / PROSODY_KEY (default
#                    tests/certs/DOMAIN.crt and .key, signed by the test CA); the only trusted CA
#                    for s2s peers is PROSODY_CA (default tests/certs/ca.crt; capath is an empty
#                    folder, so the system store is not used); s2s_require_encryption = true,
#                    s2s_secure_auth = true (a peer must present a valid certificate; Prosody
#                    then offers and uses SASL EXTERNAL); c2s requires STARTTLS.
#                    With PROSODY_S2S_DIRECT_PORT=N it also accepts XEP-0368 Direct TLS s2s on N.
#
# Outbound s2s: Prosody 0.12 has no static route setting and no pre-connect hook, so its
# outbound connections are steered by DNS: with lua-unbound installed (a hard requirement here;
# Prosody then uses libunbound for net.adns), the config sets
#   unbound = { resolvconf = false; hoststxt = false; forward = { "IP@PORT" };
#               options = { ["do-not-query-localhost:"] = "no"; ["local-zone:"] = "test. transparent" } }
# (without the local-zone line libunbound answers every name under .test with NXDOMAIN itself,
# from its RFC 6761 default zone, and never asks the forwarder; "test. nodefault" has no effect
# when set through ub_ctx_set_option, "test. transparent" does)
# so every SRV/A/AAAA query goes to PROSODY_DNS (default 127.0.0.1:53), e.g. a dnsmasq from
# tests/integration/lib.sh start_dnsmasq serving _xmpp-server._tcp SRV records; never to the
# system's resolver. (Prosody's fallback resolver, net.dns, always uses port 53.)
#
# Environment:
#   PROSODY_USERS="user:password ..."   accounts to create (default alice:secret bob:secret)
#   PROSODY_DNS=IP[:PORT]               the DNS forwarder (default 127.0.0.1:53)
#   PROSODY_LOG_LEVEL                   debug (default), info, warn, error
#   PROSODY_EXTRA                       Lua lines added to the global section (e.g.
#                                       's2s_timeout = 5'); PROSODY_HOST_EXTRA: to the VirtualHost
#   PROSODY_MODULES                     extra modules to enable, space-separated
#   PROSODY_CERTS (default: tests/certs next to this script), PROSODY_CERT, PROSODY_KEY,
#   PROSODY_CA, PROSODY_S2S_DIRECT_PORT (tls mode only), PYTHON (default /usr/bin/python3)
#
# stop: SIGTERM, SIGKILL after 5 s, waits until the process is gone. Stopping a stopped DIR is
# not an error.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CERTS=${PROSODY_CERTS:-$SCRIPT_DIR/../tests/certs}
USERS=${PROSODY_USERS:-alice:secret bob:secret}
DNS=${PROSODY_DNS:-127.0.0.1:53}
LOG_LEVEL=${PROSODY_LOG_LEVEL:-debug}
PROSODY=${PROSODY_BIN:-/usr/bin/prosody}
PROSODYCTL=${PROSODYCTL_BIN:-/usr/bin/prosodyctl}
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
READY_TIMEOUT=15

die() {
    printf 'prosody-local: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: prosody-local.sh start DIR DOMAIN C2S_PORT S2S_PORT [plain|tls]
       prosody-local.sh stop DIR
EOF
    exit 2
}

# port_busy PORT: true when something listens on (or holds) 127.0.0.1:PORT.
port_busy() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

# listening PORT: a socket listens on 127.0.0.1:PORT (kernel's view, no connection made).
listening() {
    [ -n "$(ss -Hltn "src 127.0.0.1 and sport = :$1" 2>/dev/null)" ]
}

# is_ours PID DIR: PID is alive and is the Prosody started with DIR's config.
is_ours() {
    local cmd
    [ -r "/proc/$1/cmdline" ] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    case "$cmd" in
    *prosody*" --config $2/prosody.cfg.lua"*) ;;
    *) return 1 ;;
    esac
    ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

do_stop() {
    local dir=$1 pid i
    [ -f "$dir/pid" ] || return 0
    pid=$(cat "$dir/pid")
    if is_ours "$pid" "$dir"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do # 5 s
            is_ours "$pid" "$dir" || break
            sleep 0.1
        done
        if is_ours "$pid" "$dir"; then
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                is_ours "$pid" "$dir" || break
                sleep 0.1
            done
        fi
        is_ours "$pid" "$dir" && die "prosody (pid $pid) in $dir survived SIGKILL"
    fi
    rm -f "$dir/pid"
}

fail_start() {
    local dir=$1
    shift
    do_stop "$dir" || true
    printf 'prosody-local: %s\n' "$*" >&2
    if [ -f "$dir/prosody.log" ]; then
        printf -- '--- %s (last 30 lines)\n' "$dir/prosody.log" >&2
        tail -n 30 "$dir/prosody.log" >&2
    fi
    if [ -s "$dir/prosody.out" ]; then
        printf -- '--- %s\n' "$dir/prosody.out" >&2
        tail -n 30 "$dir/prosody.out" >&2
    fi
    exit 1
}

# lua_str S: S as a Lua string literal.
lua_str() {
    "$PYTHON" -c 'import sys; s = sys.argv[1]; print("\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"")' "$1"
}

write_config() {
    local dir=$1 domain=$2 c2s_port=$3 s2s_port=$4 mode=$5 dns_ip=$6 dns_port=$7 m mods=""
    for m in disco roster saslauth dialback ping time version ${PROSODY_MODULES:-}; do
        mods+="\"$m\"; "
    done
    [ "$mode" = tls ] && mods+='"tls"; '
    {
        cat <<EOF
-- Written by scripts/prosody-local.sh ($mode mode); rewritten at every start.
run_as_root = true
pidfile = $(lua_str "$dir/prosody.pid")
data_path = $(lua_str "$dir/data")
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $c2s_port }
s2s_ports = { $s2s_port }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { ${PROSODY_S2S_DIRECT_PORT:-} }
http_ports = { }
https_ports = { }
log = { { levels = { min = "$LOG_LEVEL" }; to = "file"; filename = $(lua_str "$dir/prosody.log") } }
modules_enabled = { $mods}
authentication = "internal_hashed"
storage = "internal"
-- Outbound s2s: every DNS query goes to the loopback forwarder, never the system's resolver.
unbound = {
    resolvconf = false;
    hoststxt = false;
    forward = { "$dns_ip@$dns_port" };
    -- libunbound answers names under test. (RFC 6761) itself with NXDOMAIN unless the zone is
    -- made transparent ("nodefault" is ignored when set through ub_ctx_set_option).
    options = { ["do-not-query-localhost:"] = "no"; ["local-zone:"] = "test. transparent" };
}
EOF
        if [ "$mode" = tls ]; then
            cat <<EOF
certificates = $(lua_str "$dir/no-certs")
ssl = { cafile = $(lua_str "$CA"); capath = $(lua_str "$dir/capath") }
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = true
EOF
        else
            cat <<EOF
certificates = $(lua_str "$dir/no-certs")
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
s2s_require_encryption = false
s2s_secure_auth = false
EOF
        fi
        printf '%s\n' "${PROSODY_EXTRA:-}"
        printf 'VirtualHost %s\n' "$(lua_str "$domain")"
        if [ "$mode" = tls ]; then
            printf '    ssl = { certificate = %s; key = %s }\n' "$(lua_str "$CERT")" "$(lua_str "$KEY")"
        fi
        printf '%s\n' "${PROSODY_HOST_EXTRA:-}"
    } >"$dir/prosody.cfg.lua"
}

do_start() {
    local dir=$1 domain=$2 c2s_port=$3 s2s_port=$4 mode=${5:-plain} p pid i u dns_ip dns_port
    [ -x "$PROSODY" ] || die "$PROSODY not found (apt-get install prosody)"
    [ -x "$PROSODYCTL" ] || die "$PROSODYCTL not found (apt-get install prosody)"
    command -v ss >/dev/null || die "ss not found (apt-get install iproute2)"
    lua5.4 -e 'require "lunbound"' 2>/dev/null ||
        die "lua-unbound not installed: Prosody's outbound s2s could not be pointed at the test DNS"
    case "$domain" in
    *[!a-zA-Z0-9.-]* | "") die "bad domain: $domain" ;;
    esac
    for p in "$c2s_port" "$s2s_port" ${PROSODY_S2S_DIRECT_PORT:-}; do
        case "$p" in
        *[!0-9]* | "") die "bad port: $p" ;;
        esac
    done
    case "$mode" in
    plain | tls) ;;
    *) usage ;;
    esac
    dns_ip=${DNS%%:*} dns_port=53
    case "$DNS" in *:*) dns_port=${DNS#*:} ;; esac
    case "$dns_ip$dns_port" in
    *[!0-9.]*) die "bad PROSODY_DNS (IPv4[:PORT]): $DNS" ;;
    esac
    [ -z "${PROSODY_S2S_DIRECT_PORT:-}" ] || [ "$mode" = tls ] ||
        die "PROSODY_S2S_DIRECT_PORT needs tls mode"
    CERT=${PROSODY_CERT:-$CERTS/$domain.crt}
    KEY=${PROSODY_KEY:-$CERTS/$domain.key}
    CA=${PROSODY_CA:-$CERTS/ca.crt}
    if [ "$mode" = tls ]; then
        for f in "$CERT" "$KEY" "$CA"; do [ -r "$f" ] || die "cannot read $f"; done
        CERT=$(cd "$(dirname "$CERT")" && pwd)/$(basename "$CERT")
        KEY=$(cd "$(dirname "$KEY")" && pwd)/$(basename "$KEY")
        CA=$(cd "$(dirname "$CA")" && pwd)/$(basename "$CA")
    fi

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/pid" ] && is_ours "$(cat "$dir/pid")" "$dir"; then
        die "prosody already running in $dir (pid $(cat "$dir/pid")): stop it first"
    fi
    for p in "$c2s_port" "$s2s_port" ${PROSODY_S2S_DIRECT_PORT:-}; do
        if port_busy "$p"; then die "port 127.0.0.1:$p is busy"; fi
    done
    rm -rf "$dir/data" "$dir/capath" "$dir/no-certs"
    rm -f "$dir/prosody.log" "$dir/prosody.out" "$dir/prosody.pid" "$dir/pid"
    mkdir -p "$dir/data" "$dir/capath" "$dir/no-certs"
    chmod 700 "$dir/data"
    write_config "$dir" "$domain" "$c2s_port" "$s2s_port" "$mode" "$dns_ip" "$dns_port"

    for u in $USERS; do
        case "$u" in
        *:*) ;;
        *) die "PROSODY_USERS entry without a password: $u" ;;
        esac
        timeout 20 "$PROSODYCTL" --config "$dir/prosody.cfg.lua" register "${u%%:*}" "$domain" "${u#*:}" \
            >>"$dir/prosody.out" 2>&1 || fail_start "$dir" "prosodyctl register ${u%%:*}@$domain failed"
    done

    "$PROSODY" -F --config "$dir/prosody.cfg.lua" </dev/null >>"$dir/prosody.out" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        # Not is_ours: right after the fork the child may not have exec'd prosody yet.
        if ! kill -0 "$pid" 2>/dev/null || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
            fail_start "$dir" "prosody exited at start-up"
        fi
        if listening "$c2s_port" && listening "$s2s_port" &&
            { [ -z "${PROSODY_S2S_DIRECT_PORT:-}" ] || listening "$PROSODY_S2S_DIRECT_PORT"; } &&
            { [ "$LOG_LEVEL" != debug ] ||
                grep -q 'Setting up net.server event handling' "$dir/prosody.log" 2>/dev/null; }; then
            echo "prosody log: $dir/prosody.log"
            return 0
        fi
        sleep 0.1
    done
    fail_start "$dir" "prosody did not listen on 127.0.0.1:$c2s_port and :$s2s_port within ${READY_TIMEOUT}s"
}

[ $# -ge 1 ] || usage
case "$1" in
start)
    [ $# -eq 5 ] || [ $# -eq 6 ] || usage
    do_start "$2" "$3" "$4" "$5" "${6:-plain}"
    ;;
stop)
    [ $# -eq 2 ] || usage
    [ -d "$2" ] || exit 0
    do_stop "$(cd "$2" && pwd)"
    ;;
*) usage ;;
esac
