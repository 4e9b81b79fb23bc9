#!/bin/bash
# build.sh: every step of the container image build, in one script that runs with or without
# Docker. docker/Dockerfile calls it in its stages; tests/integration/t30-docker-files.sh runs
# `build` on the CI machine, so a broken image build shows up without a Docker engine.
#
#   docker/build.sh deps          build stage, as root: the build packages (scripts/deps.sh
#                                 build) and the data files the image copies (CA bundle,
#                                 DNSSEC root key)
#   docker/build.sh build OUT     build stage: configure and build a Release binary in OUT/build,
#                                 strip it to OUT/xmpp-tls-proxy, test the stripped binary, and
#                                 write the runtime library list (OUT/runtime-libs.txt: the
#                                 resolved ldd paths; OUT/runtime-packages.txt: the Debian
#                                 packages that own them). Copies the CA bundle and the DNSSEC root
#                                 key into OUT when present.
#   docker/build.sh runtime OUT   runtime stage, as root on a bare Debian: installs the packages of
#                                 OUT/runtime-packages.txt and nothing else, the binary as
#                                 /usr/sbin/xmpp-tls-proxy, the data files, the user
#                                 xmpp-tls-proxy (uid/gid XTP_UID, default 10269) and its folders
#
# The source tree is the folder above this script. Environment: JOBS (parallel build jobs,
# default: the number of processors), XTP_UID (runtime), CMAKE_ARGS (extra, for `build`),
# XTP_MBEDTLS_PROFILE (deps and build: ON links our static mbedTLS profile instead of the
# system's, docs/mbedtls-profile.md; the Dockerfile sets ON, the default here is OFF so that
# t30 downloads nothing).
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
XTP_UID=${XTP_UID:-10269}
PROFILE=${XTP_MBEDTLS_PROFILE:-OFF}
case "$PROFILE" in
ON | OFF) ;;
*) printf 'build.sh: XTP_MBEDTLS_PROFILE must be ON or OFF, not %s\n' "$PROFILE" >&2 && exit 2 ;;
esac
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
ROOT_KEY=/usr/share/dns/root.key
STREAM_HEADER="<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' to='example.test' version='1.0'>"

say() { printf 'build.sh: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: docker/build.sh deps
       docker/build.sh build OUT
       docker/build.sh runtime OUT
EOF
    exit 2
}

do_deps() {
    [ "$(id -u)" = 0 ] || die "deps: run as root"
    sh "$SRC/scripts/deps.sh" build
    # Data, not code: the runtime stage copies these two files instead of installing
    # ca-certificates (which pulls in openssl) and dns-root-data.
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends ca-certificates dns-root-data binutils
    if [ "$PROFILE" = ON ]; then
        # scripts/mbedtls-profile.sh: download, verify and unpack Debian's source package.
        apt-get install -y -qq --no-install-recommends curl dpkg-dev patch bzip2 xz-utils
    fi
}

# pkg_of FILE: the Debian package that owns FILE (a library path from ldd). With merged /usr,
# ldd may say /lib/... where dpkg recorded /usr/lib/..., or the other way round; the soname is
# often a symlink that dpkg records under either name.
pkg_of() {
    local f=$1 real c out
    real=$(readlink -f "$f")
    for c in "$f" "$real" "/usr$f" "${f#/usr}" "/usr$real" "${real#/usr}"; do
        [ -n "$c" ] || continue
        if out=$(dpkg-query -S "$c" 2>/dev/null); then
            # "libuv1:amd64: /usr/lib/x86_64-linux-gnu/libuv.so.1" (diversions say more).
            printf '%s\n' "$out" | sed -n 's/^\([^:, ]*\)\(:[a-z0-9]*\)\{0,1\}: .*/\1/p' | head -n 1
            return 0
        fi
    done
    return 1
}

# smoke_test BIN: the stripped binary must print its versions, accept a valid configuration,
# refuse a broken one with FILE:LINE, and answer a client's stream header with
# <starttls><required/> on a real socket, then leave cleanly on SIGTERM.
smoke_test() {
    local bin=$1 t out pid port i rc tries reply
    t=$(mktemp -d)
    # shellcheck disable=SC2064 # expand $t now
    trap "rm -rf '$t'" RETURN

    out=$("$bin" --version) || die "test: --version failed"
    case "$out" in
    "xmpp-tls-proxy "*mbedTLS\ 3.6*) ;;
    *) die "test: --version does not name mbedTLS 3.6: $out" ;;
    esac

    cp "$SRC/tests/certs/example.test.crt" "$SRC/tests/certs/example.test.key" "$t/"
    cat >"$t/bad.yaml" <<'EOF'
domains:
  example.test:
    cert: example.test.crt
    colour: blue
EOF
    if out=$("$bin" --check -c "$t/bad.yaml" 2>&1); then
        die "test: --check accepted a configuration with an unknown key"
    fi
    case "$out" in
    *"bad.yaml:4: unknown key 'colour'"*) ;;
    *) die "test: --check did not name the line of the unknown key: $out" ;;
    esac

    for ((tries = 0; tries < 5; tries++)); do
        port=$((20000 + RANDOM % 30000))
        cat >"$t/ok.yaml" <<EOF
log: { level: info }
domains:
  example.test:
    cert: example.test.crt
    key: example.test.key
    backend: { c2s: "127.0.0.1:1" }
listeners:
  - { name: c2s, listen: "127.0.0.1:$port", kind: c2s }
EOF
        out=$("$bin" --check -c "$t/ok.yaml") || die "test: --check refused a valid configuration: $out"
        "$bin" -c "$t/ok.yaml" </dev/null 2>"$t/log" &
        pid=$!
        for ((i = 0; i < 50; i++)); do
            grep -q "listening on 127.0.0.1:$port" "$t/log" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        grep -q "listening on 127.0.0.1:$port" "$t/log" && break
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
        grep -q "cannot listen" "$t/log" || die "test: the proxy did not start: $(cat "$t/log")"
    done
    [ -n "$pid" ] || die "test: no free port found for the smoke test"

    # shellcheck disable=SC2016 # the inner script's own variables
    reply=$(timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s" "$2" >&3
        buf=""
        while IFS= read -r -d ">" -u 3 part; do
            buf="$buf$part>"
            case "$buf" in *"</stream:features>"*) break ;; esac
        done
        printf "%s" "$buf"' _ "$port" "$STREAM_HEADER") || true
    kill -TERM "$pid" 2>/dev/null || true
    rc=0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        die "test: the proxy did not exit within 5 s of SIGTERM"
    fi
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || die "test: the proxy exited with status $rc after SIGTERM: $(cat "$t/log")"
    case "$reply" in
    *"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"*) ;;
    *) die "test: no <starttls><required/> in the answer to a stream header: '$reply'" ;;
    esac
    say "smoke test passed: --version, --check (good and bad), STARTTLS offer, SIGTERM"
}

do_build() {
    local out=$1 bin lib pkg missing=""
    mkdir -p "$out"
    out=$(cd "$out" && pwd)
    command -v strip >/dev/null || die "strip not found (binutils)"
    # shellcheck disable=SC2086 # CMAKE_ARGS is a list of words
    cmake -S "$SRC" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DXTP_TESTS=OFF \
        -DXTP_BENCH=OFF -DXTP_MBEDTLS_PROFILE="$PROFILE" ${CMAKE_ARGS:-} >"$out/cmake.log" 2>&1 ||
        die "cmake configure failed: see $out/cmake.log"
    cmake --build "$out/build" -j "${JOBS:-$(nproc 2>/dev/null || echo 2)}" >>"$out/cmake.log" 2>&1 ||
        die "the build failed: $(tail -n 30 "$out/cmake.log")"
    bin=$out/xmpp-tls-proxy
    strip --strip-unneeded -o "$bin" "$out/build/xmpp-tls-proxy"
    smoke_test "$bin"

    # The runtime library list: every library the dynamic loader resolves, and its package.
    if ldd "$bin" | grep -q 'not found'; then
        die "unresolved libraries: $(ldd "$bin" | grep 'not found')"
    fi
    if [ "$PROFILE" = ON ] && ldd "$bin" | grep -q 'libmbed'; then
        die "XTP_MBEDTLS_PROFILE=ON, but the binary loads a shared mbedTLS: $(ldd "$bin" | grep libmbed)"
    fi
    ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        sort -u >"$out/runtime-libs.txt"
    [ -s "$out/runtime-libs.txt" ] || die "ldd listed no libraries"
    : >"$out/runtime-packages.txt.tmp"
    while read -r lib; do
        if pkg=$(pkg_of "$lib") && [ -n "$pkg" ]; then
            printf '%s\n' "$pkg" >>"$out/runtime-packages.txt.tmp"
        else
            missing="$missing $lib"
        fi
    done <"$out/runtime-libs.txt"
    [ -z "$missing" ] || die "libraries no Debian package owns (the runtime stage could not install them):$missing"
    sort -u "$out/runtime-packages.txt.tmp" >"$out/runtime-packages.txt"
    rm -f "$out/runtime-packages.txt.tmp"

    rm -f "$out/ca-certificates.crt" "$out/root.key"
    [ ! -s "$CA_BUNDLE" ] || cp "$CA_BUNDLE" "$out/ca-certificates.crt"
    [ ! -s "$ROOT_KEY" ] || cp "$ROOT_KEY" "$out/root.key"
    say "built $bin ($(wc -c <"$bin") bytes); runtime packages: $(tr '\n' ' ' <"$out/runtime-packages.txt")"
}

do_runtime() {
    local out=$1 pkgs
    [ "$(id -u)" = 0 ] || die "runtime: run as root"
    [ -x "$out/xmpp-tls-proxy" ] || die "runtime: $out/xmpp-tls-proxy missing (run build first)"
    [ -s "$out/runtime-packages.txt" ] || die "runtime: $out/runtime-packages.txt missing"
    pkgs=$(tr '\n' ' ' <"$out/runtime-packages.txt")
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086 # a list of package names
    apt-get install -y -qq --no-install-recommends $pkgs
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/apt /var/log/dpkg.log

    install -m 0755 "$out/xmpp-tls-proxy" /usr/sbin/xmpp-tls-proxy
    if [ -s "$out/ca-certificates.crt" ]; then
        install -D -m 0644 "$out/ca-certificates.crt" "$CA_BUNDLE"
    fi
    if [ -s "$out/root.key" ]; then
        install -D -m 0644 "$out/root.key" "$ROOT_KEY"
    fi
    getent group xmpp-tls-proxy >/dev/null || groupadd --system --gid "$XTP_UID" xmpp-tls-proxy
    getent passwd xmpp-tls-proxy >/dev/null ||
        useradd --system --uid "$XTP_UID" --gid "$XTP_UID" --no-create-home \
            --home-dir /var/lib/xmpp-tls-proxy --shell /usr/sbin/nologin xmpp-tls-proxy
    install -d -m 0755 /etc/xmpp-tls-proxy
    install -d -m 0700 -o "$XTP_UID" -g "$XTP_UID" /var/lib/xmpp-tls-proxy
    /usr/sbin/xmpp-tls-proxy --version
}

[ $# -ge 1 ] || usage
case "$1" in
deps)
    [ $# -eq 1 ] || usage
    do_deps
    ;;
build)
    [ $# -eq 2 ] || usage
    do_build "$2"
    ;;
runtime)
    [ $# -eq 2 ] || usage
    do_runtime "$2"
    ;;
*) usage ;;
esac
