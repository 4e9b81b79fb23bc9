#!/bin/bash
# mbedtls-profile.sh: build the project's mbedTLS 3.6 profile (docs/mbedtls-profile.md) from
# Debian trixie's source package, into a prefix of static libraries that CMake's
# XTP_MBEDTLS_PROFILE=ON links instead of the distribution's shared libraries.
#
#   scripts/mbedtls-profile.sh DIR      (CMake runs it as DIR = BUILD/mbedtls-profile)
#
# Steps, each verified, each skipped when its result is already there:
#   1. download the pinned .dsc of trixie's source package from the Debian mirror that apt
#      already uses (or XTP_DEBIAN_MIRROR), check its SHA-256 against the pin below, then
#      download the tarballs it lists and check them against the .dsc's Checksums-Sha256;
#   2. unpack with dpkg-source (which applies Debian's patches), then revert exactly one of
#      them, cmake-disable-3rdparty.patch: Debian drops the bundled 3rdparty/ code (p256-m,
#      Everest) from its build, and the profile is built for that code;
#   3. apply our own patches, cmake/mbedtls/patches/*.patch in name order (each says why in
#      its header), and install cmake/mbedtls/xtp-mbedtls-config.h as the user configuration
#      file;
#   4. configure, build and install static libraries into DIR/prefix (Release, no programs,
#      no tests), then build and run cmake/mbedtls/selftest.c against them (RFC 7748 vectors).
# The result is DIR/prefix with lib/cmake/MbedTLS/MbedTLSConfig.cmake. DIR/stamp records the
# package version and the SHA-256 of this script, of the configuration header and of our
# patches: when they
# match, the script does nothing. Output goes to DIR/build.log; the last lines go to stderr on
# failure.
#
# Updating: when trixie publishes a new mbedtls source package (a security update), set
# DEB_VERSION and DSC_SHA256 to the new .dsc (`sha256sum` of the file) and rebuild. The old
# version disappears from the mirror's pool soon after, and then step 1 fails with a message
# that says so.
#
# Needs: bash, curl or wget, dpkg-source (dpkg-dev), patch, xz-utils, bzip2, cmake, a C
# compiler, sha256sum. Environment: CFLAGS (default: Debian's, from dpkg-buildflags), JOBS (parallel jobs, default: nproc), XTP_DEBIAN_MIRROR
# (a Debian archive base URL, e.g. the one in /etc/apt/sources.list.d/debian.sources), CC.
set -euo pipefail

DEB_SOURCE=mbedtls
DEB_VERSION=3.6.6-0.1~deb13u1
DSC_SHA256=eb9ed1adbbddcb0d00276fac6fcee0056c64ce01481c2522a16dca75792eb5eb
REVERT_PATCH=cmake-disable-3rdparty.patch

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG_H=$SRC/cmake/mbedtls/xtp-mbedtls-config.h
PATCHES=$SRC/cmake/mbedtls/patches

say() { printf 'mbedtls-profile: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

[ $# -eq 1 ] || {
    echo "usage: $0 DIR" >&2
    exit 2
}
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
PREFIX=$DIR/prefix
LOG=$DIR/build.log

want_stamp=$(printf '%s\n' "$DEB_SOURCE $DEB_VERSION" \
    "$(sha256sum "$CONFIG_H" | cut -d' ' -f1)" \
    "$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)" \
    "$(cat "$PATCHES"/*.patch "$SRC/cmake/mbedtls/selftest.c" | sha256sum | cut -d' ' -f1)")
if [ -f "$DIR/stamp" ] && [ "$(cat "$DIR/stamp")" = "$want_stamp" ] &&
    [ -f "$PREFIX/lib/cmake/MbedTLS/MbedTLSConfig.cmake" ]; then
    exit 0
fi
rm -f "$DIR/stamp"

missing=""
for c in dpkg-source patch bzip2 xz sha256sum cmake "${CC:-cc}"; do
    command -v "$c" >/dev/null || missing="$missing $c"
done
command -v curl >/dev/null || command -v wget >/dev/null || missing="$missing curl"
[ -z "$missing" ] ||
    die "missing:$missing (Debian: apt-get install dpkg-dev patch bzip2 xz-utils curl cmake gcc)"

# The mirror: the first Debian archive (a URI ending in /debian) in apt's sources.
mirror() {
    local m
    if [ -n "${XTP_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "${XTP_DEBIAN_MIRROR%/}"
        return
    fi
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | tr -s ' \t' '\n' | grep -E '^(https?|ftp)://[^ ]*/debian/?$' | head -n 1)
    [ -n "$m" ] || die "no Debian mirror in apt's sources: set XTP_DEBIAN_MIRROR"
    printf '%s\n' "${m%/}"
}

fetch() { # fetch URL FILE
    if command -v curl >/dev/null; then
        curl -fsSL --retry 3 -o "$2.part" "$1"
    else
        wget -q -O "$2.part" "$1"
    fi && mv "$2.part" "$2"
}

# sha_ok FILE SHA256
sha_ok() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

dl=$DIR/dl
mkdir -p "$dl"
dsc=${DEB_SOURCE}_${DEB_VERSION}.dsc
pool=$(mirror)/pool/main/${DEB_SOURCE:0:1}/$DEB_SOURCE
if ! { [ -f "$dl/$dsc" ] && sha_ok "$dl/$dsc" "$DSC_SHA256"; }; then
    say "downloading $dsc"
    fetch "$pool/$dsc" "$dl/$dsc" ||
        die "cannot download $pool/$dsc: trixie may have moved to a newer version (update DEB_VERSION and DSC_SHA256 in $0)"
    sha_ok "$dl/$dsc" "$DSC_SHA256" ||
        die "$dsc: SHA-256 $(sha256sum "$dl/$dsc" | cut -d' ' -f1) is not the pinned $DSC_SHA256"
fi
# The .dsc's Checksums-Sha256 block: " SHA256 SIZE NAME" lines.
files=$(awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 } on && NF == 3 { print $1, $3 }' \
    "$dl/$dsc")
[ -n "$files" ] || die "$dsc lists no files"
while read -r sum name; do
    if [ -f "$dl/$name" ] && sha_ok "$dl/$name" "$sum"; then
        continue
    fi
    say "downloading $name"
    fetch "$pool/$name" "$dl/$name" || die "cannot download $pool/$name"
    sha_ok "$dl/$name" "$sum" || die "$name: SHA-256 does not match $dsc"
done <<<"$files"

src=$DIR/src
rm -rf "$src" "$DIR/build" "$PREFIX"
: >"$LOG"
run() { "$@" >>"$LOG" 2>&1 || die "failed: $* (log: $LOG)$(printf '\n'; tail -n 25 "$LOG")"; }
say "unpacking $DEB_SOURCE $DEB_VERSION with Debian's patches"
run dpkg-source --no-check -x "$dl/$dsc" "$src"
[ -f "$src/debian/patches/$REVERT_PATCH" ] || die "$REVERT_PATCH not in Debian's patches any more"
run patch -d "$src" -p1 -R -i "debian/patches/$REVERT_PATCH"
for p in "$PATCHES"/*.patch; do
    [ -f "$p" ] || continue
    say "applying $(basename "$p")"
    run patch -d "$src" -p1 --no-backup-if-mismatch -i "$p"
done
cp "$CONFIG_H" "$src/include/mbedtls/xtp-mbedtls-config.h"
cat >>"$src/include/mbedtls/mbedtls_config.h" <<'EOF'

/* xmpp-tls-proxy profile (scripts/mbedtls-profile.sh): our additions, read by build_info.h
 * right after this file in the library and in every program built against it. */
#define MBEDTLS_USER_CONFIG_FILE "mbedtls/xtp-mbedtls-config.h"
EOF

# Debian's compiler flags for its own build of the package (debian/rules: hardening=+all), so
# the two builds differ only in the configuration.
if [ -z "${CFLAGS+set}" ] && command -v dpkg-buildflags >/dev/null; then
    CFLAGS=$(DEB_BUILD_MAINT_OPTIONS='hardening=+all optimize=-lto' dpkg-buildflags --get CFLAGS)
    export CFLAGS
fi
say "building static libraries into $PREFIX"
run cmake -S "$src" -B "$DIR/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib \
    -DUSE_STATIC_MBEDTLS_LIBRARY=ON -DUSE_SHARED_MBEDTLS_LIBRARY=OFF \
    -DENABLE_PROGRAMS=OFF -DENABLE_TESTING=OFF -DMBEDTLS_FATAL_WARNINGS=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON
run cmake --build "$DIR/build" -j "${JOBS:-$(nproc 2>/dev/null || echo 2)}"
run cmake --install "$DIR/build"
[ -f "$PREFIX/lib/cmake/MbedTLS/MbedTLSConfig.cmake" ] || die "no MbedTLSConfig.cmake in $PREFIX"
# RFC 7748 test vectors through PSA, against the installed headers and libraries.
run "${CC:-cc}" -O2 -o "$DIR/selftest" "$SRC/cmake/mbedtls/selftest.c" -I"$PREFIX/include" \
    "$PREFIX/lib/libmbedcrypto.a" "$PREFIX/lib/libeverest.a" "$PREFIX/lib/libp256m.a" -lpthread
run "$DIR/selftest"
printf '%s\n' "$want_stamp" >"$DIR/stamp"
say "mbedTLS $DEB_VERSION profile ready in $PREFIX"
