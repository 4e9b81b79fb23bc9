#!/bin/bash
# t39-sigterm-under-load: SIGTERM while logged-in c2s sessions are in the middle of a
# conversation (chatload.py: alice and bob, STARTTLS and Direct TLS, a message to themselves
# through jabberd2 every 0.2 s).
#   1. limits.drain_timeout 20s, 16 sessions that go on talking for 3 s after the SIGTERM,
#      then send one message of 20000 bytes each and close their streams: every message comes
#      back whole, every session ends with </stream:stream> and reason=done (no
#      <system-shutdown/>, nothing cut early), the listeners stop accepting at once, and the
#      proxy exits 0 as soon as the last session has gone, long before the 20 s.
#   2. limits.drain_timeout 4s, 8 such sessions that finish within 1.5 s, and 3 logged-in
#      sessions that never leave: the 8 end cleanly as above; the 3 get <system-shutdown/> at
#      the drain timeout, on a well-formed stream after whole stanzas only, one close line each
#      reason=shutdown; the proxy exits 0 within the drain timeout plus the close linger.
# Each session has exactly one open and one close line; no sanitizer report.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

start_jabberd2 "$DOMAIN"
HDR=$(stream_header "$DOMAIN")
NS_SASL=urn:ietf:params:xml:ns:xmpp-sasl

# load NAME N AFTER_STOP: chatload.py in the background (pid in LOAD), until it is ready.
load() {
    rm -f "$T/$1.ready" "$T/$1.stop"
    bg "$PY" "$LIB_DIR/chatload.py" --starttls-port "$PROXY_STARTTLS_PORT" \
        --direct-port "$PROXY_DIRECT_PORT" --ca "$CA" --domain "$DOMAIN" --sessions "$2" \
        --ready "$T/$1.ready" --stop "$T/$1.stop" --after-stop "$3" --interval 0.2 \
        --big 20000 --duration 60 >"$T/$1.out" 2>&1
    LOAD=$BG_PID
    wait_until 40 test -e "$T/$1.ready" || {
        cat "$T/$1.out"
        fail "$1: the $2 sessions did not log in"
    }
}

# proxy_exit SECONDS: waits for the proxy to leave by itself (after the one SIGTERM already
# sent: a second signal would make it exit at once), then checks what stop_proxy checks.
proxy_exit() {
    local rc=0
    wait_until "$1" sh -c "! kill -0 $PROXY_PID 2>/dev/null" || fail "the proxy did not exit within $1 s"
    wait "$PROXY_PID" || rc=$?
    PROXY_PID=
    [ "$rc" = 0 ] || fail "the proxy exited with status $rc"
    ! grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$PROXY_LOG" ||
        fail "sanitizer report in the proxy log"
}

# ---- 1. everybody finishes within the drain -----------------------------------------------------
N=16
DRAIN_TIMEOUT=20s LOG_LEVEL=info write_proxy_config "$T/drain.yaml"
start_proxy "$T/drain.yaml"
load load1 "$N" 3
proxy_mark
touch "$T/load1.stop" # each session goes on for 3 s, then its big message and its close
kill -TERM "$PROXY_PID"
term_at=$(date +%s%N)
wait_proxy_log "draining $N sessions for up to 20000ms" || fail "no drain line naming $N sessions"
sleep 0.3
port_listening "$PROXY_STARTTLS_PORT" && fail "the STARTTLS listener still accepts during the drain"
port_listening "$PROXY_DIRECT_PORT" && fail "the Direct TLS listener still accepts during the drain"
wait "$LOAD" || {
    cat "$T/load1.out"
    fail "a session was cut during the drain"
}
done_at=$(date +%s%N)
proxy_exit 5
exit_at=$(date +%s%N)
log "load: $(cat "$T/load1.out")"
log "SIGTERM -> sessions done $(((done_at - term_at) / 1000000)) ms -> proxy exit $(((exit_at - done_at) / 1000000)) ms later (drain_timeout 20 s)"
expect_sessions c2s=$((N / 2)) c2s-direct=$((N / 2)) || fail "session lines"
[ "$(close_lines | grep -c ' close reason=done ')" = "$N" ] ||
    fail "not all $N sessions ended with reason=done: $(close_lines | grep -v 'reason=done ')"
proxy_log_has 'drain_timeout reached' && fail "the drain timed out although every session left"
[ $(((exit_at - term_at) / 1000000)) -lt 12000 ] || fail "the proxy took too long to exit"

# ---- 2. the drain timeout ends the sessions that do not leave -------------------------------------
PROXY_LOG=$T/proxy2.log
PROXY_LOG_MARK=0
DRAIN_TIMEOUT=4s LOG_LEVEL=info write_proxy_config "$T/drain2.yaml"
start_proxy "$T/drain2.yaml"
held=()
for i in 1 2 3; do
    u=alice
    [ "$i" = 2 ] && u=bob
    rm -f "$T/held$i.ready"
    bg raw --port "$PROXY_DIRECT_PORT" --timeout 15 --tls --send "$HDR" --wait '</stream:features>' \
        --send "<auth xmlns='$NS_SASL' mechanism='PLAIN'>$(printf '\0%s\0secret' "$u" | base64)</auth>" \
        --wait '<success' --send "$HDR" --wait '</stream:features>' \
        --send "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>held$i</resource></bind></iq>" \
        --wait '</iq>' --ready "$T/held$i.ready" --wait '</stream:stream>' \
        --expect-stream-error system-shutdown --expect-closed >"$T/held$i.out" 2>&1
    held+=("$BG_PID")
done
wait_until 15 test -e "$T/held1.ready" -a -e "$T/held2.ready" -a -e "$T/held3.ready" ||
    fail "the held sessions did not log in"
load load2 8 1.5
touch "$T/load2.stop"
kill -TERM "$PROXY_PID"
term_at=$(date +%s%N)
wait_proxy_log 'draining 11 sessions for up to 4000ms' || fail "no drain line naming 11 sessions"
wait "$LOAD" || {
    cat "$T/load2.out"
    fail "a session that finished within the drain was cut"
}
for i in 1 2 3; do
    wait "${held[$((i - 1))]}" || {
        cat "$T/held$i.out"
        fail "held session $i did not get <system-shutdown/> and a close"
    }
    stream_well_formed "$T/held$i.out" || fail "held session $i: the stream is not well-formed"
done
shut_at=$(date +%s%N)
t=$(((shut_at - term_at) / 1000000))
if [ "$t" -lt 3500 ] || [ "$t" -ge 7000 ]; then
    fail "the held sessions were ended $t ms after SIGTERM, not at drain_timeout=4s"
fi
proxy_exit 5
log "load: $(cat "$T/load2.out"); the 3 held sessions got <system-shutdown/> $t ms after SIGTERM"
proxy_log_has 'limits.drain_timeout reached: closing 3 sessions' || fail "no line at the end of the drain"
expect_sessions c2s=4 c2s-direct=7 || fail "session lines"
[ "$(close_lines | grep -c ' close reason=done ')" = 8 ] || fail "not 8 sessions with reason=done: $(close_lines)"
[ "$(close_lines | grep -c ' close reason=shutdown ')" = 3 ] || fail "not 3 sessions with reason=shutdown: $(close_lines)"
pass
