#!/usr/bin/env bash
# t17: s2s-out refusals and TLS policy (issue 3, test 3, the outbound half).
#
# The proxy serves example.org. In most cases the "backend" is rawxmpp.py on the s2s-out
# listener speaking as jabberd2 does (a header without to/from/version, then
# <db:result from='example.org' to=REMOTE>key</db:result>); the remotes are real Prosody 0.12
# servers on loopback, reached through resolve.static. Each case restarts the proxy with its
# own config and log ($T/CASE.yaml, $T/CASE.log):
#   untrusted, wrongname, expired: example.test in tls mode presents a certificate from an
#     untrusted CA, for the wrong name, or expired: the backend gets <not-authorized/>, the
#     close line says why, Prosody gets <not-authorized/> on a well-formed stream and never our
#     dialback key or SASL;
#   notls: plain.test, a plain Prosody (no TLS at all), answers our <starttls/> with a stream
#     error; s2s.tls required: <remote-connection-failed/> and a close line saying it has no TLS;
#   failure, opportunistic: other.test, a Prosody without TLS on its inbound s2s (it answers
#     <starttls/> with <failure/>; prosody-plugins/mod_no_s2sin_tls.lua), is refused with tls
#     required; with s2s.remotes.other.test.tls opportunistic jabberd2 (the real backend here)
#     and Prosody exchange messages, the proxy warns about plaintext, and its outbound
#     stream is dialback in the clear. (Prosody's outbound s2s keeps TLS: its dialback callback
#     arrives at our s2s listener, which takes TLS only; a remote with no TLS at all, like
#     plain.test, can never verify our dialback key.)
#   legacy: the documented { tls: opportunistic, verify: optional } for another such other.test
#     whose certificate does not name it: dialback both ways, the proxy's own callback to it
#     (<db:verify/>) in plaintext too;
#   (opportunistic, legacy: messages both ways at once; chat() says why that once deadlocked)
#   strip-required, strip-opportunistic: a man in the middle (strip_starttls.py) removes
#     <starttls/> from example.test's features: the proxy sends <starttls/> anyway and the
#     stream is TLS 1.3 with SASL EXTERNAL, whether the remote's tls is required or
#     opportunistic: nothing falls back to plaintext;
#   pin, nopin: s2s.state_file is pre-seeded with another fingerprint for example.test. With
#     pin: true the stream is refused and the log names both fingerprints; without pin it goes
#     on, the log warns with both fingerprints, and the state file then holds the new one.
# After each case the proxy is stopped: it must exit cleanly with no sanitizer report, and
# every session must have one close line (s2s_sessions.py).
. "$(dirname "$0")/lib.sh"

need_cmd openssl ss sha256sum
S2S=$(free_port) # the proxy's s2s listener (the remotes' inbound streams and dialback callbacks)
OUT=$(free_port) # its s2s-out listener (the fake backend, and jabberd2 through DNS)
printf 'test-secret-%s\n' "$$" >"$T/secret"
chmod 600 "$T/secret"
# shellcheck disable=SC2046 # dns_xmpp_server prints words meant to be split
start_dnsmasq "" $(dns_xmpp_server example.org "$S2S" xmpp.example.org) \
    $(dns_xmpp_server other.test "$OUT" out.example.org)
start_jabberd2_s2s example.org
JA_C2S=$BACKEND_C2S_PORT
BACK=$BACKEND_S2S_PORT

# The remotes. prosody_at NAME: remembers the Prosody just started under NAME.
declare -A RPORT RLOG
prosody_at() {
    RPORT[$1]=$PROSODY_S2S_PORT
    RLOG[$1]=$PROSODY_LOG
}
for c in untrusted:untrusted.example.test wrongname:wrong-name expired:expired.example.test \
    good:example.test; do
    PROSODY_CERT=$XTP_CERTS/${c#*:}.crt PROSODY_KEY=$XTP_CERTS/${c#*:}.key \
        start_prosody example.test tls
    prosody_at "${c%%:*}"
done
start_prosody plain.test plain
prosody_at plain
# start_no_inbound_tls CERTBASE: other.test in plain mode (neither encryption nor certificates
# required of peers) with mod_tls presenting CERTBASE.crt, and mod_no_s2sin_tls.
CERTS_ABS=$(cd "$XTP_CERTS" && pwd)
start_no_inbound_tls() {
    local ssl="certificate = \"$CERTS_ABS/$1.crt\"; key = \"$CERTS_ABS/$1.key\""
    PROSODY_MODULES="tls no_s2sin_tls" \
        PROSODY_EXTRA="plugin_paths = { \"$LIB_DIR/prosody-plugins\" }" \
        PROSODY_HOST_EXTRA="    ssl = { $ssl; cafile = \"$CERTS_ABS/ca.crt\" }" \
        start_prosody other.test plain
}
start_no_inbound_tls other.test
prosody_at legacy
LEGACY_C2S=$PROSODY_C2S_PORT
start_no_inbound_tls wrong-name # proves nothing: dialback both ways
prosody_at nocert
NOCERT_C2S=$PROSODY_C2S_PORT

# proxy_case NAME EXAMPLE_TEST_PORT [YAML lines for s2s.remotes...]: (re)starts the proxy with
# its log in $T/NAME.log, its state file $T/NAME.state and example.test routed to the port;
# other.test goes to the Prosody named by $OTHER (default legacy).
CASE=
proxy_case() {
    local name=$1 port=$2
    shift 2
    [ -z "$PROXY_PID" ] || end_case
    CASE=$name
    PROXY_LOG=$T/$name.log
    {
        cat <<EOF
log: { level: debug }
tls: { ca_file: $CA, min_version: "1.2" }
domains:
  example.org:
    cert: $XTP_CERTS/example.org.crt
    key: $XTP_CERTS/example.org.key
    backend: { s2s: "127.0.0.1:$BACK" }
listeners:
  - { name: s2s, listen: "127.0.0.1:$S2S", kind: s2s }
  - { name: s2s-out, listen: "127.0.0.1:$OUT", kind: s2s-out }
resolve:
  static:
    example.test: "127.0.0.1:$port"
    plain.test: "127.0.0.1:${RPORT[plain]}"
    other.test: "127.0.0.1:${RPORT[${OTHER:-legacy}]}"
limits: { handshake_timeout: 8s, drain_timeout: 0s }
s2s:
  verify: required
  tls: required
  state_file: $T/$name.state
  dialback_secret_file: $T/secret
EOF
        if [ $# -gt 0 ]; then
            printf '  remotes:\n'
            printf '    %s\n' "$@"
        fi
    } >"$T/$name.yaml"
    PROXY_STARTTLS_PORT=$S2S PROXY_DIRECT_PORT=$OUT start_proxy "$T/$name.yaml"
}

# end_case: stops the proxy; its exit, sanitizer silence and session lines must be right.
end_case() {
    proxy_alive || fail "$CASE: the proxy died"
    stop_proxy
    [ -z "$PROXY_VERDICT" ] || fail "$CASE: $PROXY_VERDICT"
    "$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" >"$T/$CASE.sessions" ||
        fail "$CASE: session lines: $(cat "$T/$CASE.sessions")"
}

# backend NAME REMOTE CHECKS...: the fake jabberd2 on s2s-out asks to send example.org ->
# REMOTE, then the rawxmpp.py steps and checks given.
JHDR="<?xml version='1.0'?><stream:stream xmlns:stream='$NS_STREAMS' xmlns='jabber:server' xmlns:db='jabber:server:dialback'>"
backend() {
    local name=$1 remote=$2
    shift 2
    "$PY" "$LIB_DIR/rawxmpp.py" --port "$OUT" --timeout 10 --send "$JHDR" --wait "id=" \
        --send "<db:result from='example.org' to='$remote'>0123456789abcdef</db:result>" \
        "$@" >"$T/$name.out" 2>"$T/$name.err" || {
        cat "$T/$name.out" "$T/$name.err"
        fail "$name: the backend's view is wrong"
    }
}
VALID="<db:result from='example.test' to='example.org' type='valid'/>"

# close_has REGEX: a close line of the current case matches.
close_has() {
    grep -E ' close reason=' "$PROXY_LOG" | grep -Eq -- "$1"
}
closes() { grep ' close reason=' "$PROXY_LOG"; }

fingerprint() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }

# chat NAME PORT TLS: both directions at once. With dialback both ways, the remote checks our
# key on its own stream to us while our s2s-in waits for jabberd2 to accept it: s2s-in keeps
# answering <db:verify/> while it holds the remote's stanzas (s2s_in.c), so nothing waits for
# anything else. (Before that fix this deadlocked until handshake_timeout.)
chat() {
    local name=$1 port=$2 tls=$3 d dirs=(both)
    for d in "${dirs[@]}"; do
        s2s_chat --a alice@example.org --a-addr "127.0.0.1:$JA_C2S" --a-tls plain \
            --b bob@other.test --b-addr "127.0.0.1:$port" --b-tls "$tls" --direction "$d" \
            --count 3 --timeout 40 --wait 30 >"$T/chat-$name-$d.out" 2>&1 || {
            cat "$T/chat-$name-$d.out"
            fail "$name: messages did not arrive ($d)"
        }
        cat "$T/chat-$name-$d.out"
    done
}

# ---- 1. certificates that do not prove example.test: refused before any authentication step
for c in "untrusted:not issued by a trusted CA" "wrongname:wrong.invalid" "expired:expired"; do
    name=${c%%:*} why=${c#*:}
    proxy_case "$name" "${RPORT[$name]}"
    backend "$name" example.test --expect-stream-error not-authorized --expect-not "type='valid'" \
        --expect-closed
    wait_until 5 close_has 'listener=s2s-out .*reason=not-authenticated' ||
        fail "$name: no not-authenticated close line: $(closes)"
    close_has "reason=not-authenticated .*detail=\"[^\"]*${why}[^\"]*s2s\.verify required for example\.test" ||
        fail "$name: the close line does not say '$why': $(closes)"
    grep -Eq "Received\[s2sin[^]]*\]: <(db:result|result|auth)" "${RLOG[$name]}" &&
        fail "$name: Prosody got our dialback or SASL after a bad certificate"
    # Prosody saw TLS start, then a well-formed stream error on the new stream (our header
    # first: RFC 6120 §5.4.3.3), not a bare <stream:error/> it would call not-well-formed.
    grep -Eq 's2sin[0-9a-f]+\s+debug\s+TLS negotiation started' "${RLOG[$name]}" ||
        fail "$name: Prosody saw no TLS negotiation (the refusal must follow the certificate)"
    wait_until 5 grep -Eq 'Incoming s2s stream example\.org->example\.test closed: not-authorized' "${RLOG[$name]}" ||
        fail "$name: Prosody did not get <not-authorized/> on a well-formed stream: $(grep -E 'invalid XML|closed:' "${RLOG[$name]}" | tail -2)"
    end_case
done

# ---- 2. a remote without any TLS, s2s.tls required: refused, and the log says why
proxy_case notls "${RPORT[good]}"
backend notls plain.test --expect-stream-error remote-connection-failed \
    --expect-not "type='valid'" --expect-closed
wait_until 5 close_has 'listener=s2s-out .*reason=remote-failed' ||
    fail "notls: no remote-failed close line: $(closes)"
close_has 'reason=remote-failed error=ENOTLS .*detail="plain\.test has no TLS: <starttls/> answered with <unsupported-stanza-type/> \(s2s\.tls required\)"' ||
    fail "notls: the close line does not say the remote has no TLS: $(closes)"
grep -Eq 'Received\[s2sin[^]]*\]: <(db:result|result) ' "${RLOG[plain]}" &&
    fail "notls: our dialback key went to plain.test in plaintext"

# ---- 3. a remote that refuses STARTTLS: refused with tls required, plaintext if opportunistic
proxy_case failure "${RPORT[good]}"
backend failure other.test --expect-stream-error remote-connection-failed \
    --expect-not "type='valid'" --expect-closed
wait_until 5 close_has 'listener=s2s-out .*reason=remote-failed' ||
    fail "failure: no remote-failed close line: $(closes)"
close_has 'reason=remote-failed error=ENOTLS .*detail="other\.test refused STARTTLS \(s2s\.tls required\)"' ||
    fail "failure: the close line does not say STARTTLS was refused: $(closes)"
grep -q 'refusing STARTTLS on inbound s2s' "${RLOG[legacy]}" ||
    fail "failure: the remote did not refuse STARTTLS (mod_no_s2sin_tls not loaded?)"

proxy_case opportunistic "${RPORT[good]}" "other.test: { tls: opportunistic }"
chat opportunistic "$LEGACY_C2S" starttls
proxy_log_has 'listener=s2s-out .* other\.test: no TLS \(s2s\.tls opportunistic for it\): plaintext dialback' ||
    fail "opportunistic: no warning about plaintext"
proxy_log_has 'listener=s2s-out .* open domain=example\.org remote=other\.test auth=dialback as=dialback tls=none ' ||
    fail "opportunistic: no plaintext dialback stream to other.test"
proxy_log_has 'listener=s2s .* open domain=example\.org remote=other\.test auth=pkix tls=TLSv1\.3 ' ||
    fail "opportunistic: other.test's inbound stream was not TLS 1.3 with its certificate"

# The documented legacy combination, { tls: opportunistic, verify: optional }, with a remote
# whose certificate proves nothing: dialback both ways, our callback to it in plaintext too.
OTHER=nocert proxy_case legacy "${RPORT[good]}" "other.test: { tls: opportunistic, verify: optional }"
chat legacy "$NOCERT_C2S" plain
proxy_log_has 'listener=s2s-out .* open domain=example\.org remote=other\.test auth=dialback as=dialback tls=none ' ||
    fail "legacy: no plaintext dialback stream to other.test"
proxy_log_has 'listener=s2s .* open domain=example\.org remote=other\.test auth=dialback tls=TLSv1\.3 ' ||
    fail "legacy: other.test's inbound stream was not TLS 1.3 with dialback"
proxy_log_has 'listener=dialback-callback .* close reason=done .*other\.test says the key is valid' ||
    fail "legacy: no successful dialback callback to other.test"

# ---- 4. <starttls/> stripped by a man in the middle: TLS all the same, never plaintext
for mode in required opportunistic; do
    name=strip-$mode
    rm -f "$T/$name.port"
    bg "$PY" "$LIB_DIR/strip_starttls.py" --listen 127.0.0.1:0 --connect "127.0.0.1:${RPORT[good]}" \
        --log "$T/$name.mitm" --port-file "$T/$name.port"
    wait_until 5 test -s "$T/$name.port" || fail "$name: strip_starttls.py did not start"
    proxy_case "$name" "$(cat "$T/$name.port")" "example.test: { tls: $mode }"
    backend "$name" example.test --wait "$VALID" --send '</stream:stream>' --expect-closed
    grep -q 'stripped <starttls/> from the features' "$T/$name.mitm" ||
        fail "$name: the man in the middle stripped nothing"
    grep -Eq "C: .*<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" "$T/$name.mitm" ||
        fail "$name: the proxy did not send <starttls/> when it was not offered"
    grep -q '^\[1\] tls$' "$T/$name.mitm" || fail "$name: no TLS went through the man in the middle"
    grep -Eq '^\[[2-9]\]' "$T/$name.mitm" && fail "$name: the proxy connected more than once"
    proxy_log_has 'listener=s2s-out .* open domain=example\.org remote=example\.test auth=pkix as=sasl-external tls=TLSv1\.3 ' ||
        fail "$name: the stream was not TLS 1.3 with certificate authentication"
    proxy_log_has 'plaintext' && fail "$name: the proxy logged plaintext"
    wait_until 5 close_has 'listener=s2s-out .*reason=done' || fail "$name: no clean close: $(closes)"
    stop_pid "$BG_PID" 2
done

# ---- 5. the remote certificate memory: pinned and not pinned
OLD=$(fingerprint "$XTP_CERTS/other.test.crt")
NEW=$(fingerprint "$XTP_CERTS/example.test.crt")
for name in pin nopin; do
    printf 'example.test %s\n' "$OLD" >"$T/$name.state"
    chmod 600 "$T/$name.state"
done
proxy_case pin "${RPORT[good]}" "example.test: { pin: true }"
backend pin example.test --expect-stream-error not-authorized --expect-not "type='valid'" \
    --expect-closed
wait_until 5 close_has 'reason=not-authenticated' || fail "pin: no not-authenticated close line: $(closes)"
proxy_log_has "error conn=[0-9]+ listener=s2s-out .*remote certificate for example\.test changed: was sha256=$OLD now sha256=$NEW .*refused: pin is true" ||
    fail "pin: no error line with both fingerprints"
why="certificate for example\.test changed \(sha256 ${NEW:0:16}\.\.\., pinned ${OLD:0:16}\.\.\.\)"
close_has "reason=not-authenticated error=EPINNED .*detail=\"$why \(s2s\.verify cannot be relaxed" ||
    fail "pin: the close line does not say the pinned certificate changed: $(closes)"
grep -qx "example.test $OLD" "$T/pin.state" || fail "pin: the pinned fingerprint was replaced"

proxy_case nopin "${RPORT[good]}"
backend nopin example.test --wait "$VALID" --send '</stream:stream>' --expect-closed
proxy_log_has "warn  conn=[0-9]+ listener=s2s-out .*remote certificate for example\.test changed: was sha256=$OLD now sha256=$NEW " ||
    fail "nopin: no warning with both fingerprints"
proxy_log_has 'refused: pin' && fail "nopin: refused although not pinned"
proxy_log_has "listener=s2s-out .* open domain=example\.org remote=example\.test auth=pkix .*cert_sha256=$NEW " ||
    fail "nopin: the stream did not open with the new certificate"
grep -qx "example.test $NEW" "$T/nopin.state" || fail "nopin: the state file does not hold the new fingerprint"
end_case

pass
