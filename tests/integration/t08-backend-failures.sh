#!/bin/bash
# t08-backend-failures: the backend is down at connect time -> <remote-connection-failed/>
# within 5 s; the backend dies mid-session -> the client gets a stream error within 5 s instead
# of a hang; the proxy keeps serving once jabberd2 is back.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

HDR=$(stream_header "$DOMAIN")
TLS_STREAM=(--send "$HDR" --wait '</stream:features>' --send "$STARTTLS" --starttls --send "$HDR")
elapsed() { sed -n 's/^rawxmpp: .* after \([0-9.]*\) s$/\1/p' "$1"; }

# 1. Nothing listens on the backend port (jabberd2 is not started yet).
BACKEND_C2S_PORT=$(free_port)
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
raw --port "$PROXY_STARTTLS_PORT" --timeout 5 "${TLS_STREAM[@]}" \
    --expect-stream-error remote-connection-failed --expect-closed >"$T/down.out" 2>&1 || {
    cat "$T/down.out"
    fail "backend down (STARTTLS): expected <remote-connection-failed/> within 5 s"
}
log "backend down, STARTTLS: <remote-connection-failed/> after $(elapsed "$T/down.out") s"
raw --port "$PROXY_DIRECT_PORT" --timeout 5 --tls --send "$HDR" \
    --expect-stream-error remote-connection-failed --expect-closed >"$T/down-direct.out" 2>&1 || {
    cat "$T/down-direct.out"
    fail "backend down (Direct TLS): expected <remote-connection-failed/> within 5 s"
}
log "backend down, Direct TLS: <remote-connection-failed/> after $(elapsed "$T/down-direct.out") s"
proxy_alive || fail "the proxy died"

# 2. jabberd2's c2s is killed while a session is relayed (the client has its features).
start_jabberd2 "$DOMAIN" "$BACKEND_C2S_PORT"
bg raw --port "$PROXY_STARTTLS_PORT" --timeout 10 "${TLS_STREAM[@]}" --wait '</stream:features>' \
    --ready "$T/ready" --expect '<mechanisms' --expect '<stream:error' --expect-closed \
    >"$T/killed.out" 2>&1
client=$BG_PID
wait_until 10 test -e "$T/ready" || {
    cat "$T/killed.out"
    fail "the session did not reach jabberd2's features"
}
kill -KILL "$(jabberd2_pid c2s)"
killed_at=$(date +%s%N)
for ((i = 0; i < 80; i++)); do # 8 s at most
    kill -0 "$client" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$client" 2>/dev/null && {
    cat "$T/killed.out"
    fail "backend killed: the client still waits 8 s later"
}
rc=0
wait "$client" || rc=$?
took=$((($(date +%s%N) - killed_at) / 1000000))
[ "$rc" = 0 ] || {
    cat "$T/killed.out"
    fail "backend killed: the client did not get a stream error and a close"
}
[ "$took" -lt 5000 ] || fail "backend killed: the stream error came after $took ms"
log "backend killed mid-session: $(grep -o '<stream:error.*' "$T/killed.out" | head -c 200) within $took ms"
proxy_alive || fail "the proxy died"

# 3. jabberd2 back on the same port: a full session works again.
stop_jabberd2
start_jabberd2 "$DOMAIN" "$BACKEND_C2S_PORT"
xmpp_client starttls "$PROXY_STARTTLS_PORT" >"$T/client.out" 2>&1 ||
    fail "session after the backend came back: $(grep FAIL "$T/client.out")"
[ "$(jabberd2_connects)" = 2 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected 2"
log "after restart: $(grep 'OK' "$T/client.out")"
proxy_alive || fail "the proxy died"
pass
