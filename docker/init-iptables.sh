#!/bin/sh
# init-iptables.sh: send the backend's outbound server-to-server connections to the proxy.
#
# jabberd2 has no setting for an outbound s2s relay: it resolves the remote domain and connects
# to it in plaintext. This script installs an iptables REDIRECT in the network namespace the
# backend shares with the proxy, so that every outbound TCP connection of the backend's user
# lands on the proxy's s2s-out listener (127.0.0.1:XTP_S2S_OUT_PORT). The proxy reads the
# address the backend wanted (SO_ORIGINAL_DST) and the domain from the stream, and makes the
# TLS connection itself. The proxy's own connections run under another user and are never
# redirected: a rule without the owner match would send the proxy back to itself.
#
# Run it as root (or with CAP_NET_ADMIN) once per network namespace, before the backend
# federates: as the init container of docker/compose.yaml or of a Kubernetes pod, or at boot
# on a host (docs/operator-guide.md). Running it again replaces the rules; --remove deletes them.
#
#   init-iptables.sh [--dry-run] [--remove]
#
# Environment:
#   XTP_BACKEND_UID     required: the user (name or number) the backend's s2s process runs as;
#                       in a container, the number (10522 in docker/jabberd2)
#   XTP_S2S_OUT_PORT    the s2s-out listener's port on loopback (default 5271)
#   XTP_REDIRECT_PORTS  destination ports to redirect, comma-separated, ranges as 5269:5270
#                       (default: every port, so that no remote is reached around the proxy)
#   XTP_EXCLUDE         destinations (address or CIDR, comma- or space-separated) the backend
#                       reaches directly, such as its database server (default: none).
#                       Loopback is always excluded.
#   XTP_IPV6            what to do with the backend's outbound IPv6 TCP, when the namespace
#                       has IPv6: reject (default: TCP reset, so the backend tries the next
#                       address), redirect (to [::1]:XTP_S2S_OUT_PORT; the proxy then needs a
#                       second s2s-out listener on "[::1]:PORT"), or off (no IPv6 rule)
#
# --dry-run prints the commands instead of running them. Exit status 0, 1 on an error, 2 on
# bad usage.
set -eu

CHAIN=XTP_S2S_OUT
UID_=${XTP_BACKEND_UID:-}
PORT=${XTP_S2S_OUT_PORT:-5271}
PORTS=${XTP_REDIRECT_PORTS:-}
EXCLUDE=$(printf '%s' "${XTP_EXCLUDE:-}" | tr ',' ' ')
IPV6=${XTP_IPV6:-reject}
DRY=0
REMOVE=0

say() { printf 'init-iptables: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

for arg in "$@"; do
    case "$arg" in
    --dry-run) DRY=1 ;;
    --remove) REMOVE=1 ;;
    *)
        say "usage: init-iptables.sh [--dry-run] [--remove]"
        exit 2
        ;;
    esac
done

case "$UID_" in
'') die "XTP_BACKEND_UID is not set: name the user (or uid) the backend runs as" ;;
*[!A-Za-z0-9_.-]*) die "XTP_BACKEND_UID '$UID_' is not a user name or number" ;;
esac
case "$PORT" in
'' | *[!0-9]*) die "XTP_S2S_OUT_PORT '$PORT' is not a port number" ;;
esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
    die "XTP_S2S_OUT_PORT $PORT is out of range"
fi
case "$PORTS" in
*[!0-9,:]*) die "XTP_REDIRECT_PORTS '$PORTS' must be ports and ranges like 5269,5270:5280" ;;
esac
if [ -n "$PORTS" ] && [ "$(printf '%s' "$PORTS" | tr -cd , | wc -c)" -ge 15 ]; then
    die "XTP_REDIRECT_PORTS: at most 15 entries (iptables multiport)"
fi
for net in $EXCLUDE; do
    case "$net" in
    *[!0-9A-Fa-f.:/]*) die "XTP_EXCLUDE entry '$net' is not an address or CIDR" ;;
    esac
done
case "$IPV6" in
reject | redirect | off) ;;
*) die "XTP_IPV6 must be reject, redirect or off, not '$IPV6'" ;;
esac

run() {
    if [ "$DRY" = 1 ]; then
        echo "$*"
    else
        "$@"
    fi
}

# has_ipv6: the namespace has IPv6 (the kernel lists addresses), so the backend could use it.
has_ipv6() {
    grep -q . /proc/net/if_inet6 2>/dev/null
}

# del_rules TOOL TABLE: deletes every jump to our chain from OUTPUT, then the chain.
del_rules() {
    tool=$1 table=$2
    if [ "$DRY" = 1 ]; then
        echo "$tool -t $table -D OUTPUT -p tcp -m owner --uid-owner $UID_ -j $CHAIN"
        echo "$tool -t $table -F $CHAIN"
        echo "$tool -t $table -X $CHAIN"
        return 0
    fi
    command -v "$tool" >/dev/null 2>&1 || return 0
    while "$tool" -t "$table" -D OUTPUT -p tcp -m owner --uid-owner "$UID_" -j "$CHAIN" 2>/dev/null; do :; done
    "$tool" -t "$table" -F "$CHAIN" 2>/dev/null || true
    "$tool" -t "$table" -X "$CHAIN" 2>/dev/null || true
}

# add_rules TOOL TABLE LOOPBACK TARGET...: our chain holds the exceptions, then TARGET for the
# rest; OUTPUT jumps to it for the backend's TCP only.
add_rules() {
    tool=$1 table=$2 loopback=$3
    shift 3
    if [ "$DRY" = 0 ]; then
        command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install iptables)"
        "$tool" -t "$table" -N "$CHAIN" 2>/dev/null || "$tool" -t "$table" -F "$CHAIN"
    else
        echo "$tool -t $table -N $CHAIN"
    fi
    run "$tool" -t "$table" -A "$CHAIN" -d "$loopback" -j RETURN
    for net in $EXCLUDE; do
        case "$net:$tool" in
        *:*:ip6tables | *.*:iptables) run "$tool" -t "$table" -A "$CHAIN" -d "$net" -j RETURN ;;
        esac
    done
    if [ -n "$PORTS" ]; then
        run "$tool" -t "$table" -A "$CHAIN" -p tcp -m multiport --dports "$PORTS" "$@"
    else
        run "$tool" -t "$table" -A "$CHAIN" -p tcp "$@"
    fi
    if [ "$DRY" = 1 ] || ! "$tool" -t "$table" -C OUTPUT -p tcp -m owner --uid-owner "$UID_" -j "$CHAIN" 2>/dev/null; then
        run "$tool" -t "$table" -A OUTPUT -p tcp -m owner --uid-owner "$UID_" -j "$CHAIN"
    fi
    [ "$DRY" = 1 ] || "$tool" -t "$table" -S "$CHAIN" | sed "s/^/init-iptables: $tool -t $table: /" >&2
}

del_rules iptables nat
del_rules ip6tables nat
del_rules ip6tables filter
if [ "$REMOVE" = 1 ]; then
    say "rules for uid $UID_ removed"
    exit 0
fi

add_rules iptables nat 127.0.0.0/8 -j REDIRECT --to-ports "$PORT"
if [ "$IPV6" = off ]; then
    say "IPv6: no rule (XTP_IPV6=off)"
elif [ "$DRY" = 0 ] && ! has_ipv6; then
    say "IPv6: not enabled in this namespace, no rule needed"
elif [ "$IPV6" = redirect ]; then
    add_rules ip6tables nat ::1/128 -j REDIRECT --to-ports "$PORT"
else
    add_rules ip6tables filter ::1/128 -j REJECT --reject-with tcp-reset
fi
say "outbound TCP of uid $UID_ goes to the proxy's s2s-out listener on port $PORT"
