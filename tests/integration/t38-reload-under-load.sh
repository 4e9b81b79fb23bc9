#!/bin/bash
# t38-reload-under-load: SIGHUP while 16 logged-in c2s sessions (chatload.py: alice and bob,
# STARTTLS and Direct TLS) exchange messages through jabberd2. Six broken files, each sent with
# its own SIGHUP while the sessions keep talking:
#   yaml       a YAML syntax error                 -> reload failed ... proxy.yaml:LINE
#   unknown    an unknown key                      -> reload failed ... proxy.yaml:LINE
#   nocert     a certificate file that is missing  -> reload failed ... names the file
#   keymatch   a key that does not match its cert  -> reload failed (certificate or key error)
#   listener   a listener moved to another port    -> reload refused ... listeners change only
#                                                     with a restart
#   empty      an empty file                       -> reload failed ... empty
# Each gives exactly one log line (and no "reloaded" line), changes nothing: a new session
# right after it still works under the old settings; no live session is dropped or delayed
# past 5 s per message. Then a good file (max_stanza 64KiB -> 16KiB, handshake_timeout 10s ->
# 8s): exactly one "reloaded" line; a new session gets <policy-violation/> for a 20000-byte
# stanza, while the 16 old sessions, which keep their configuration, still send one of 20000
# bytes each at the end. All 16 then close cleanly: one open and one close line each,
# reason=done. Then 10 good reloads in a row, a new session after each (sessions on 11
# snapshots at once): one line each, nobody dropped. The proxy exits 0 with no sanitizer
# report.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

N=16
start_jabberd2 "$DOMAIN"
LOG_LEVEL=info write_proxy_config "$T/good.yaml"
cp "$T/good.yaml" "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

bg "$PY" "$LIB_DIR/chatload.py" --starttls-port "$PROXY_STARTTLS_PORT" \
    --direct-port "$PROXY_DIRECT_PORT" --ca "$CA" --domain "$DOMAIN" --sessions "$N" \
    --ready "$T/load.ready" --stop "$T/load.stop" --interval 0.2 --big 20000 --duration 80 \
    >"$T/load.out" 2>&1
LOAD=$BG_PID
wait_until 40 test -e "$T/load.ready" || {
    cat "$T/load.out"
    fail "the $N sessions did not log in"
}
proxy_mark
OPEN_MARK=$PROXY_LOG_MARK
log "$N sessions logged in and talking"

HDR=$(stream_header "$DOMAIN")
# new_session: a new client still gets jabberd2's features through STARTTLS.
new_session() {
    raw --port "$PROXY_STARTTLS_PORT" --timeout 5 --send "$HDR" --wait '</stream:features>' \
        --send "$STARTTLS" --starttls --send "$HDR" --wait '</stream:features>' \
        --send '</stream:stream>' --expect '<mechanisms' --expect-not '<stream:error' \
        --expect-closed >"$T/new.out" 2>&1
}
reload_lines() {
    proxy_log_new | grep -E 'reload(ed| failed| refused)' || true
}

# broken NAME REGEX: writes proxy.yaml broken as NAME says (from good.yaml), SIGHUP, then
# exactly one line matching REGEX and no other reload line.
broken() {
    local name=$1 re=$2 i
    case $name in
    yaml) { cat "$T/good.yaml"; printf 'domains: [\n'; } >"$T/proxy.yaml" ;;
    unknown) sed 's/^limits:$/limits:\n  max_stanzas: 1KiB/' "$T/good.yaml" >"$T/proxy.yaml" ;;
    nocert) sed "s|cert: .*|cert: $T/missing.crt|" "$T/good.yaml" >"$T/proxy.yaml" ;;
    keymatch) sed "s|key: .*|key: $XTP_CERTS/example.org.key|" "$T/good.yaml" >"$T/proxy.yaml" ;;
    listener) sed "s|listen: \"127.0.0.1:$PROXY_STARTTLS_PORT\"|listen: \"127.0.0.1:$(free_port)\"|" \
        "$T/good.yaml" >"$T/proxy.yaml" ;;
    empty) : >"$T/proxy.yaml" ;;
    esac
    cmp -s "$T/proxy.yaml" "$T/good.yaml" && fail "$name: the broken file is not broken"
    proxy_mark
    kill -HUP "$PROXY_PID"
    wait_until 5 proxy_log_has "$re" || fail "$name: no line matching '$re': $(reload_lines)"
    sleep 0.3 # a second line would come now
    [ "$(reload_lines | wc -l)" = 1 ] || fail "$name: not exactly one reload line: $(reload_lines)"
    proxy_log_new | grep -q ' close reason=' && fail "$name: a session closed at the reload: $(close_lines)"
    kill -0 "$LOAD" 2>/dev/null || fail "$name: the sessions under load failed: $(cat "$T/load.out")"
    line=$(reload_lines | sed 's/.*keeping the running configuration: //' | cut -c1-150)
    cp "$T/good.yaml" "$T/proxy.yaml"
    proxy_mark
    new_session || {
        cat "$T/new.out"
        fail "$name: a new session after the broken reload did not work"
    }
    log "$name: $line"
}

broken yaml 'reload failed, keeping the running configuration: .*proxy\.yaml:[0-9]+'
broken unknown 'reload failed, keeping the running configuration: .*proxy\.yaml:[0-9]+: .*max_stanzas'
broken nocert "reload failed, keeping the running configuration: .*missing\.crt"
broken keymatch 'reload failed, keeping the running configuration: .*key'
broken listener 'reload refused, keeping the running configuration: .*listeners change only with a restart'
broken empty 'reload failed, keeping the running configuration: .*empty'
proxy_alive || fail "the proxy died"

# The good file: a smaller max_stanza for new sessions only.
sed 's/max_stanza: .*/max_stanza: 16KiB/; s/handshake_timeout: .*/handshake_timeout: 8s/' \
    "$T/good.yaml" >"$T/proxy.yaml"
proxy_mark
kill -HUP "$PROXY_PID"
wait_until 5 proxy_log_has "reloaded .*proxy\.yaml \(1 domains, 2 listeners; $((N + 0)) sessions keep their old configuration\)" ||
    fail "no reloaded line naming the $N sessions: $(reload_lines)"
sleep 0.3
[ "$(reload_lines | wc -l)" = 1 ] || fail "good: not exactly one reload line: $(reload_lines)"
BIG=$(head -c 20000 /dev/zero | tr '\0' 'x')
printf '%s' "<message to='bob@$DOMAIN'><body>$BIG</body></message>" >"$T/big.xml"
proxy_mark
raw --port "$PROXY_STARTTLS_PORT" --timeout 5 --send "$HDR" --wait '</stream:features>' \
    --send "$STARTTLS" --starttls --send "$HDR" --wait '</stream:features>' \
    --send-file "$T/big.xml" --expect-stream-error policy-violation --expect-closed \
    >"$T/newlimit.out" 2>&1 || {
    cat "$T/newlimit.out"
    fail "good: a new session was not held to the new max_stanza=16KiB"
}
log "good: one reloaded line; a new session gets <policy-violation/> for 20000 bytes"

# A storm of good reloads, 10 in a row, a new session between each (sessions on different
# snapshots): one "reloaded" line each, nobody dropped.
# shellcheck disable=SC2317 # called through wait_until
reloaded_at_least() { [ "$(proxy_log_new | grep -c 'reloaded ')" -ge "$1" ]; }
proxy_mark
for i in $(seq 1 10); do
    kill -HUP "$PROXY_PID"
    wait_until 5 reloaded_at_least "$i" ||
        fail "storm: no reloaded line for SIGHUP $i"
    new_session || {
        cat "$T/new.out"
        fail "storm: a new session after reload $i did not work"
    }
done
[ "$(proxy_log_new | grep -c 'reload')" = 10 ] || fail "storm: not 10 reload lines: $(reload_lines)"
kill -0 "$LOAD" 2>/dev/null || fail "storm: the sessions under load failed: $(cat "$T/load.out")"
log "storm: 10 reloads, 10 lines, 10 new sessions, the $N sessions still talking"

touch "$T/load.stop"
wait "$LOAD" || {
    cat "$T/load.out"
    fail "the sessions under load did not all finish cleanly"
}
log "load: $(cat "$T/load.out")"
PROXY_LOG_MARK=$OPEN_MARK
# The N sessions, 6 new ones after the broken reloads, 1 after the good one, 10 in the storm.
expect_sessions c2s=$((N / 2 + 17)) c2s-direct=$((N / 2)) || fail "session lines"
[ "$(close_lines | grep -c ' close reason=done ')" = $((N + 16)) ] ||
    fail "not all $N + 16 sessions ended with reason=done: $(close_lines | grep -v 'reason=done ')"
proxy_alive || fail "the proxy died"
stop_proxy
[ -z "$PROXY_VERDICT" ] || fail "$PROXY_VERDICT"
pass
