#!/bin/sh
# Install what xmpp-tls-proxy needs to build and test, on Debian 12 (bookworm), as root.
# Idempotent: packages already present are not touched; apt is only called when something is
# missing. mbedTLS 3.6 LTS comes from Debian trixie, pinned at priority 100 so that nothing else
# is ever upgraded from trixie by accident.
#
# Usage: scripts/deps.sh [build|test|bench|all]   (default: all)
set -eu

what=${1:-all}

build_pkgs="cmake make gcc pkg-config libuv1-dev libexpat1-dev libyaml-dev libunbound-dev libllhttp-dev"
# prosody: the modern remote peer in the s2s tests; dnsmasq-base: test DNS on loopback (the
# package without a system service); iptables: transparent s2s-out in a test network namespace.
test_pkgs="clang libclang-rt-dev jabberd2 sqlite3 python3-slixmpp openssl testssl.sh procps iproute2 curl prosody lua-unbound dnsmasq-base iptables haproxy python3-yaml strace"
# haproxy: the load balancer in front of proxy_protocol listeners (t33) and in bench/.
# bench: the TLS terminators operators use today, measured side by side (bench/README.md).
bench_pkgs="stunnel4 libssl-dev linux-perf valgrind"
trixie_pkgs="libmbedtls-dev"
expat_min="2.5.0-1+deb12u2"
mbedtls_min="3.6"

say() { printf 'deps: %s\n' "$*" >&2; }

if [ ! -r /etc/os-release ] || ! . /etc/os-release || [ "${ID:-}" != debian ]; then
    cat >&2 <<MSG
deps: this script installs packages on Debian 12 only. On another system install by hand:
  a C11 compiler, CMake >= 3.20, pkg-config, libuv >= 1.44, expat >= 2.5.0 (with reparse
  deferral control), libyaml 0.2, libunbound, llhttp, mbedTLS 3.6 LTS (MbedTLSConfig.cmake or
  pkg-config mbedtls/mbedx509/mbedcrypto); for the tests also clang (libFuzzer, sanitizers),
  jabberd2, prosody, dnsmasq, iptables, sqlite3, python3-slixmpp, openssl and testssl.sh.
MSG
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    say "not root: cannot install packages; checking only"
    can_install=0
else
    can_install=1
fi

missing=""
need() { # need PKG [MIN_VERSION]
    v=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true)
    case "$v" in
    "install ok installed "*)
        if [ -n "${2:-}" ] && dpkg --compare-versions "${v##* }" lt "$2"; then
            missing="$missing $1"
        fi ;;
    *) missing="$missing $1" ;;
    esac
}

case "$what" in
build) pkgs="$build_pkgs" ;;
test) pkgs="$build_pkgs $test_pkgs" ;;
bench) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
all) pkgs="$build_pkgs $test_pkgs $bench_pkgs" ;;
*) say "usage: $0 [build|test|bench|all]"; exit 2 ;;
esac
for p in $pkgs; do
    if [ "$p" = libexpat1-dev ]; then need "$p" "$expat_min"; else need "$p"; fi
done
need libmbedtls-dev "$mbedtls_min"

[ -z "$missing" ] && exit 0
say "missing:$missing"
if [ "$can_install" = 0 ]; then
    say "run as root: $0 $what"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
case " $missing " in
*" libmbedtls-dev "*)
    if [ "${VERSION_CODENAME:-}" = bookworm ]; then
        if [ ! -f /etc/apt/sources.list.d/xtp-trixie.sources ]; then
            say "adding Debian trixie at pin priority 100 for mbedTLS 3.6"
            cat >/etc/apt/sources.list.d/xtp-trixie.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
            cat >/etc/apt/preferences.d/xtp-trixie <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
        fi
        trixie_opt="-t trixie"
    else
        trixie_opt=""
    fi ;;
esac

apt-get update -qq
rest=""
for p in $missing; do [ "$p" = libmbedtls-dev ] || rest="$rest $p"; done
# shellcheck disable=SC2086
[ -z "$rest" ] || apt-get install -y -qq --no-install-recommends $rest
case " $missing " in
*" libmbedtls-dev "*)
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends ${trixie_opt:-} $trixie_pkgs ;;
esac

# Check again: a pin or mirror problem must fail here, not later in CMake.
missing=""
for p in $pkgs; do
    if [ "$p" = libexpat1-dev ]; then need "$p" "$expat_min"; else need "$p"; fi
done
need libmbedtls-dev "$mbedtls_min"
if [ -n "$missing" ]; then
    say "still missing after install:$missing"
    exit 1
fi
say "all dependencies present"
