#!/bin/bash
# t35-fault-backend: c2s backends that fail in the ways t08 does not show (t08: nothing listens;
# jabberd2 killed while a client waits for features). The faulty backends are fakepeer.py, one
# per domain under *.example.org (the example.org certificate covers them), next to jabberd2
# for example.test, on which a guard session (guard.py) stays logged in across all of them:
#   noaccept: the backend's listen queue is full, connects hang (SYNs dropped): at
#     limits.handshake_timeout (3 s) <remote-connection-failed/>, close reason=backend-connect
#     error=ETIMEDOUT;
#   rst, fin: the backend accepts, reads our stream header and resets (RST) or closes (FIN):
#     <remote-connection-failed/> within 2 s, close reason=backend-io-error error=ECONNRESET /
#     reason=backend-eof;
#   midstanza-rst, midstanza-fin: after a full login (SASL PLAIN, bind) and one relayed
#     message, the backend sends half a stanza and dies: the client gets a stream error within
#     2 s on a well-formed stream (the half stanza is never relayed);
#   killed: finally jabberd2's c2s is killed (SIGKILL) while alice and bob are logged in and
#     exchanging messages: both get a stream error within 5 s, one close line each,
#     reason=backend-eof.
# Each case: exactly one close line per session since the case began, the proxy alive.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

HS=3 # limits.handshake_timeout, seconds
ORG=example.org
NS_SASL=urn:ietf:params:xml:ns:xmpp-sasl
NS_BIND=urn:ietf:params:xml:ns:xmpp-bind

# What a jabberd2-like backend says, for the fakes that get that far.
bhdr() { # bhdr DOMAIN
    printf "<?xml version='1.0'?><stream:stream xmlns:stream='%s' xmlns='jabber:client' from='%s' id='fake%s' version='1.0'>" \
        "$NS_STREAMS" "$1" "$RANDOM"
}
FEAT_SASL="<stream:features><mechanisms xmlns='$NS_SASL'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
FEAT_BIND="<stream:features><bind xmlns='$NS_BIND'/></stream:features>"

start_jabberd2 "$DOMAIN"
declare -A PORT
start_fake noaccept --no-accept
PORT[noaccept]=$FAKE_PORT
start_fake rst --wait '<stream:stream' --reset
PORT[rst]=$FAKE_PORT
start_fake fin --wait '<stream:stream' --fin
PORT[fin]=$FAKE_PORT
for how in rst fin; do
    d=midstanza-$how.$ORG
    start_fake "midstanza-$how" --wait '<stream:stream' --send "$(bhdr "$d")$FEAT_SASL" \
        --wait '</auth>' --send "<success xmlns='$NS_SASL'/>" \
        --wait '<stream:stream' --send "$(bhdr "$d")$FEAT_BIND" \
        --wait '</iq>' --send "<iq type='result' id='b1'><bind xmlns='$NS_BIND'><jid>alice@$d/r</jid></bind></iq>" \
        --wait '</message>' --send "<message from='bob@$d/r' to='alice@$d/r' id='m1'><body>whole-1</body></message><message from='bob@$d/r' to='alice@$d/r' id='m2'><body>HALF-" \
        --sleep 0.3 "$([ "$how" = rst ] && echo --reset || echo --fin)"
    PORT[midstanza-$how]=$FAKE_PORT
done

LOG_LEVEL=info HANDSHAKE_TIMEOUT=${HS}s write_proxy_config "$T/proxy.yaml"
"$PY" - "$T/proxy.yaml" "$XTP_CERTS/$ORG.crt" "$XTP_CERTS/$ORG.key" \
    "noaccept=${PORT[noaccept]}" "rst=${PORT[rst]}" "fin=${PORT[fin]}" \
    "midstanza-rst=${PORT[midstanza-rst]}" "midstanza-fin=${PORT[midstanza-fin]}" <<'EOF'
import sys
path, crt, key, *pairs = sys.argv[1:]
lines = open(path).read().splitlines(True)
i = next(n for n, l in enumerate(lines) if l.startswith("listeners:"))
add = []
for p in pairs:
    name, port = p.split("=")
    add += [f"  {name}.example.org:\n", f"    cert: {crt}\n", f"    key: {key}\n",
            f"    backend: {{ c2s: \"127.0.0.1:{port}\" }}\n"]
lines[i:i] = add
open(path, "w").writelines(lines)
EOF
start_proxy "$T/proxy.yaml"

rm -f "$T/guard.ready" "$T/guard.stop"
bg "$PY" "$LIB_DIR/guard.py" --mode direct --port "$PROXY_DIRECT_PORT" --ca "$CA" \
    --domain "$DOMAIN" --ready "$T/guard.ready" --stop "$T/guard.stop" --max-latency 5 \
    >"$T/guard.out" 2>&1
GUARD=$BG_PID
wait_until 15 test -e "$T/guard.ready" || {
    cat "$T/guard.out"
    fail "the guard session did not log in"
}

# tls_stream DOMAIN: the rawxmpp.py steps of a client up to its stream header over TLS.
tls_stream() {
    local h
    h=$(stream_header "$1")
    TLS_STREAM=(--domain "$1" --send "$h" --wait '</stream:features>' --send "$STARTTLS"
        --starttls --send "$h")
}
elapsed() { sed -n 's/^rawxmpp: .* after \([0-9.]*\) s$/\1/p' "$1"; }

# early NAME CONDITION MIN MAX REASON_RE: a client of NAME.example.org gets CONDITION after
# MIN to MAX seconds and the connection closes; one close line matching REASON_RE.
early() {
    local name=$1 cond=$2 min=$3 max=$4 re=$5 out=$T/$1.out t
    proxy_mark
    tls_stream "$name.$ORG"
    raw --port "$PROXY_STARTTLS_PORT" --timeout 10 "${TLS_STREAM[@]}" \
        --expect-stream-error "$cond" --expect-closed >"$out" 2>&1 || {
        cat "$out"
        fail "$name: the client did not get <$cond/> and a close"
    }
    t=$(elapsed "$out")
    awk -v t="$t" -v a="$min" -v b="$max" 'BEGIN { exit !(t >= a && t <= b) }' ||
        fail "$name: <$cond/> after $t s, expected $min-$max s"
    stream_well_formed "$out" || fail "$name: the client's stream is not well-formed"
    expect_sessions c2s=1 || fail "$name: session lines"
    close_line_has "$re" || fail "$name: the close line does not match '$re': $(close_lines)"
    proxy_alive || fail "$name: the proxy died"
    log "$name: <$cond/> after $t s; $(close_lines | grep -o 'close reason=[^ ]* error=[^ ]*')"
}

early noaccept remote-connection-failed 2.5 5 \
    "listener=c2s .*close reason=backend-connect error=ETIMEDOUT .*detail=\"limits\.handshake_timeout=${HS}000ms"
early rst remote-connection-failed 0 2 'listener=c2s .*close reason=backend-io-error error=ECONNRESET '
fake_log_has rst '^\[1\] reset$' || fail "rst: the fake backend did not reset"
early fin remote-connection-failed 0 2 'listener=c2s .*close reason=backend-eof '
fake_log_has fin '^\[1\] fin$' || fail "fin: the fake backend did not close"

# Logged in, one message relayed, then the backend dies in the middle of the next stanza.
AUTH="<auth xmlns='$NS_SASL' mechanism='PLAIN'>$(printf '\0alice\0secret' | base64)</auth>"
for how in rst fin; do
    name=midstanza-$how
    d=$name.$ORG
    proxy_mark
    tls_stream "$d"
    raw --port "$PROXY_STARTTLS_PORT" --timeout 5 "${TLS_STREAM[@]}" --wait '</stream:features>' \
        --send "$AUTH" --wait '<success' --send "$(stream_header "$d")" --wait '</stream:features>' \
        --send "<iq type='set' id='b1'><bind xmlns='$NS_BIND'/></iq>" --wait '</iq>' \
        --ready "$T/$name.ready" --send "<message to='bob@$d'><body>hi</body></message>" \
        --wait 'whole-1' --expect '<stream:error' --expect-not 'HALF-' --expect-closed \
        >"$T/$name.out" 2>&1 || {
        cat "$T/$name.out"
        fail "$name: the client did not get the whole message, then a stream error and a close"
    }
    t=$(elapsed "$T/$name.out")
    stream_well_formed "$T/$name.out" || fail "$name: the client's stream is not well-formed"
    want='backend-io-error error=ECONNRESET'
    [ "$how" = fin ] && want='backend-eof'
    expect_sessions c2s=1 || fail "$name: session lines"
    close_line_has "listener=c2s .*close reason=$want " ||
        fail "$name: the close line does not say '$want': $(close_lines)"
    proxy_alive || fail "$name: the proxy died"
    log "$name: whole message relayed, then $(grep -o '<stream:error><[a-z-]*' "$T/$name.out") (session $t s)"
done

touch "$T/guard.stop"
wait "$GUARD" || {
    cat "$T/guard.out"
    fail "the guard session next to the faulty backends broke"
}
log "guard: $(cat "$T/guard.out")"

# jabberd2's c2s killed under two logged-in sessions in the middle of a conversation.
proxy_mark
for u in alice bob; do
    rm -f "$T/$u.ready"
    bg raw --port "$PROXY_DIRECT_PORT" --timeout 12 --tls --send "$(stream_header "$DOMAIN")" \
        --wait '</stream:features>' \
        --send "<auth xmlns='$NS_SASL' mechanism='PLAIN'>$(printf '\0%s\0secret' "$u" | base64)</auth>" \
        --wait '<success' --send "$(stream_header "$DOMAIN")" --wait '</stream:features>' \
        --send "<iq type='set' id='b1'><bind xmlns='$NS_BIND'><resource>r</resource></bind></iq>" \
        --wait '</iq>' --send "<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>" \
        --wait "id='s1'" --send "<message to='$u@$DOMAIN/r'><body>before-$u</body></message>" \
        --wait "before-$u" --ready "$T/$u.ready" --expect '<stream:error' --expect-closed \
        >"$T/killed-$u.out" 2>&1
    eval "pid_$u=\$BG_PID"
done
wait_until 15 test -e "$T/alice.ready" -a -e "$T/bob.ready" || fail "killed: the sessions did not log in"
kill -KILL "$(jabberd2_pid c2s)"
killed_at=$(date +%s%N)
for u in alice bob; do
    pid=pid_$u
    rc=0
    wait "${!pid}" || rc=$?
    took=$((($(date +%s%N) - killed_at) / 1000000))
    [ "$rc" = 0 ] || {
        cat "$T/killed-$u.out"
        fail "killed: $u did not get a stream error and a close"
    }
    [ "$took" -lt 5000 ] || fail "killed: $u's stream error came after $took ms"
    stream_well_formed "$T/killed-$u.out" || fail "killed: $u's stream is not well-formed"
done
expect_sessions c2s-direct=2 || fail "killed: session lines"
[ "$(close_lines | grep -c 'listener=c2s-direct .*close reason=backend-eof ')" = 2 ] ||
    fail "killed: not two backend-eof close lines: $(close_lines)"
proxy_alive || fail "the proxy died"
log "killed: both logged-in sessions got a stream error within $took ms"
pass
