# shellcheck shell=bash
# faults.sh: shared parts of the fault-injection tests (t35-t39, issue 6 "Fault injection"),
# sourced after lib.sh. Each fault must give:
#   1. the expected stream error or close, checked by the test's own client;
#   2. exactly one close line per session, whose reason (and error, detail) says what happened:
#      proxy_mark before the fault, then expect_sessions LISTENER=N... and close_line_has RE;
#   3. no crash and no sanitizer report: proxy_alive, and lib.sh fails a test whose proxy
#      leaves badly at the end;
#   4. other sessions unaffected: a guard session (guard.py) across the faults where one fits.

# start_fake NAME FAKEPEER_ARGS...: tests/integration/fakepeer.py on a free port, its log in
# $T/fake-NAME.log. Sets FAKE_PORT; the EXIT trap stops it.
start_fake() {
    local name=$1 i
    shift
    rm -f "$T/fake-$name.port"
    bg "$PY" "$LIB_DIR/fakepeer.py" --port-file "$T/fake-$name.port" --log "$T/fake-$name.log" \
        --max-seconds 100 "$@"
    for ((i = 0; i < 50; i++)); do
        if [ -s "$T/fake-$name.port" ]; then
            # shellcheck disable=SC2034 # for the test that sources this file
            FAKE_PORT=$(cat "$T/fake-$name.port")
            return 0
        fi
        kill -0 "$BG_PID" 2>/dev/null || fail "fakepeer $name exited at start-up"
        sleep 0.1
    done
    fail "fakepeer $name did not listen after 5 s"
}

# fake_log_has NAME REGEX: an extended regex matches a line of fake NAME's log.
fake_log_has() {
    grep -Eq -- "$2" "$T/fake-$1.log" 2>/dev/null
}

# close_lines: the close lines the proxy logged since proxy_mark.
close_lines() {
    proxy_log_new | grep -E ' close reason=' || true
}

# close_line_has REGEX: a close line since proxy_mark matches.
close_line_has() {
    close_lines | grep -Eq -- "$1"
}

# expect_sessions LISTENER=N...: since proxy_mark, exactly N sessions on each LISTENER named,
# every session seen with exactly one close line, at most one open line, and nothing logged
# after its close (s2s_sessions.py). Waits up to 5 s for the close lines first.
expect_sessions() {
    local spec need=() n=0 i
    for spec in "$@"; do
        need+=(--need "$spec")
        n=$((n + ${spec#*=}))
    done
    for ((i = 0; i < 50; i++)); do
        [ "$(close_lines | wc -l)" -ge "$n" ] && break
        sleep 0.1
    done
    "$PY" "$LIB_DIR/s2s_sessions.py" "$PROXY_LOG" --since "${PROXY_LOG_MARK:-0}" "${need[@]}" \
        >"$T/sessions.out" 2>&1 || {
        cat "$T/sessions.out"
        close_lines
        return 1
    }
}

# stream_well_formed FILE: the last stream the client received (rawxmpp.py's output, its own
# "rawxmpp:" lines left out: from the last stream header on) is well-formed XML up to its end: a stream error may close it, a
# truncated stanza may not.
stream_well_formed() {
    "$PY" - "$1" <<'EOF'
import re, sys, xml.parsers.expat
data = b"".join(l for l in open(sys.argv[1], "rb").read().splitlines(True)
               if not l.startswith(b"rawxmpp: "))
data = data.rsplit(b"\n[TLS]\n", 1)[-1].rstrip(b"\n")
start = data.rfind(b"<stream:stream")
if start < 0:
    sys.exit("no stream header received")
p = xml.parsers.expat.ParserCreate()
try:
    p.Parse(data[start:], True)
except xml.parsers.expat.ExpatError as exc:
    sys.exit(f"not well-formed: {exc}: {data[start:][-200:]!r}")
EOF
}
