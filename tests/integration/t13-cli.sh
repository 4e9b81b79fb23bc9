#!/bin/bash
# t13-cli: the command line an operator relies on. --version names the libraries; --check
# loads the configuration, certificates and keys and exits 0, or 1 with "FILE:LINE: message"
# for an unknown key, a bad address, a missing file, an RSA key under 2048 bits and a key that
# does not match its certificate; a listener that cannot bind stops the start with exit 1.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ -x "$XTP_BIN" ] || skip "proxy binary not built: $XTP_BIN"

"$XTP_BIN" --version >"$T/version.out" 2>&1 || fail "--version exited non-zero"
for lib in 'xmpp-tls-proxy [0-9]' 'mbed ?TLS 3\.6' 'libuv 1\.' 'expat_2\.' 'libyaml 0\.'; do
    grep -Eiq "$lib" "$T/version.out" || fail "--version does not name '$lib': $(cat "$T/version.out")"
done
log "--version: $(tr '\n' ' ' <"$T/version.out")"

write_proxy_config "$T/good.yaml"
"$XTP_BIN" --check -c "$T/good.yaml" >"$T/check.out" 2>&1 || fail "--check on a good file: $(cat "$T/check.out")"
grep -q 'OK' "$T/check.out" || fail "--check printed no OK"

# bad NAME LINE REGEX: write good.yaml changed by the sed script on stdin into NAME.yaml and
# expect --check to exit 1 naming NAME.yaml:LINE and matching REGEX.
bad() {
    local name=$1 line=$2 re=$3 rc=0
    sed -f - "$T/good.yaml" >"$T/$name.yaml"
    "$XTP_BIN" --check -c "$T/$name.yaml" >"$T/$name.out" 2>&1 || rc=$?
    [ "$rc" = 1 ] || fail "$name: --check exited $rc, expected 1: $(cat "$T/$name.out")"
    grep -Eq "^$T/$name\.yaml:$line: .*$re" "$T/$name.out" ||
        fail "$name: expected '$name.yaml:$line: ...$re', got: $(cat "$T/$name.out")"
    log "$name: $(head -1 "$T/$name.out" | sed "s|$T/||")"
}
# Line numbers refer to the file write_proxy_config writes (see lib.sh).
bad unknown-key 1 "unknown key" <<<'1s/^log: {/log: { colour: blue,/'
bad bad-address 9 "address|port|numeric" <<<'9s/listen: "127.0.0.1:[0-9]*"/listen: "localhost:5222"/'
bad missing-cert 5 "cannot read" <<<"5s|cert: .*|cert: $T/nothere.crt|"
bad rsa1024 "[56]" "2048" <<<"5s|cert: .*|cert: $XTP_CERTS/rsa1024.crt|
6s|key: .*|key: $XTP_CERTS/rsa1024.key|"
bad mismatch 6 "does not match" <<<"6s|key: .*|key: $XTP_CERTS/example.org.key|"

# A listener on a port that is taken: exit 1 and say which.
python3 -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",int(sys.argv[1]))); s.listen(); time.sleep(8)' \
    "$PROXY_STARTTLS_PORT" &
holder=$!
_LIB_BG+=("$holder")
wait_port "$PROXY_STARTTLS_PORT" 5 || fail "could not occupy the port"
rc=0
timeout 10 "$XTP_BIN" -c "$T/good.yaml" >"$T/busy.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "a busy listen port: exit $rc, expected 1: $(cat "$T/busy.out")"
grep -q "listener=c2s cannot listen on 127.0.0.1:$PROXY_STARTTLS_PORT" "$T/busy.out" ||
    fail "a busy listen port: no clear message: $(cat "$T/busy.out")"
log "busy port: $(grep 'cannot listen' "$T/busy.out" | cut -d' ' -f3-)"
pass
