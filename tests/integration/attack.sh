# shellcheck shell=bash
# attack.sh: shared parts of the attack suite (t20-t29, issue 6 "Hostile Internet"), sourced
# after lib.sh. Every attack test checks the same five things, with these helpers:
#
#   1. the expected stream error or close: the test's own client checks it;
#   2. exactly one log line per attacking session, its close line with the reason:
#      attack_mark before the attack, then expect_closes N REASON_RE [ERROR_RE];
#   3. no crash: proxy_alive, and lib.sh fails a test whose proxy leaves badly at the end;
#   4. bounded memory: rss_kib before and after, rss_check LABEL BEFORE MAX_GROWTH_KIB;
#   5. the backend never sees unauthenticated or pre-TLS bytes: the attacks target the domain
#      example.org, whose backend is recorder.py (every byte it gets is in $RECORDER_DIR), and
#      a guard session (guard.py, alice logged in on example.test's jabberd2) must keep
#      working across the attacks: start_guard before, stop_guard after.
#
# Setup: attack_setup [MODE] starts jabberd2 for example.test, the recorder for example.org and
# the proxy with both domains (the lib.sh knobs apply: HANDSHAKE_TIMEOUT, MAX_CONNECTIONS, ...),
# then logs the guard in over MODE (direct by default).

ORG=example.org
RECORDER_DIR=
RECORDER_PORT=
GUARD_PID=

# start_recorder: recorder.py for $ORG on a free port, files in $T/recorder.
start_recorder() {
    RECORDER_DIR=$T/recorder
    RECORDER_PORT=$(free_port)
    bg "$PY" "$LIB_DIR/recorder.py" --port "$RECORDER_PORT" --dir "$RECORDER_DIR" --domain "$ORG"
    wait_until 10 test -e "$RECORDER_DIR/ready" || fail "recorder.py did not start"
}

# recorder_conns: connections the recorder accepted so far.
recorder_conns() {
    find "$RECORDER_DIR" -name 'conn-*.in' | wc -l
}

# recorder_has TEXT: some recorded connection received TEXT (a fixed string).
recorder_has() {
    find "$RECORDER_DIR" -name 'conn-*.in' -print0 | xargs -0 -r grep -qaF -- "$1"
}

# recorder_bytes_max: the most bytes one connection delivered to the recorder.
recorder_bytes_max() {
    local f m=0 n
    for f in "$RECORDER_DIR"/conn-*.in; do
        [ -e "$f" ] || continue
        n=$(wc -c <"$f")
        [ "$n" -gt "$m" ] && m=$n
    done
    echo "$m"
}

# recorder_only_headers: every recorded connection holds at most the stream header the proxy
# writes (and maybe its </stream:stream>): not one byte the attacker chose.
recorder_only_headers() {
    local f
    for f in "$RECORDER_DIR"/conn-*.in; do
        [ -e "$f" ] || continue
        "$PY" - "$f" <<'EOF' || return 1
import re, sys
data = open(sys.argv[1], "rb").read()
rest = re.sub(rb"^<\?xml version='1\.0'\?><stream:stream [^<>]*>", b"", data, count=1)
rest = rest.replace(b"</stream:stream>", b"", 1)
if rest.strip():
    sys.exit(f"{sys.argv[1]}: the backend received {len(rest)} bytes past the proxy's header: "
             f"{rest[:120]!r}")
EOF
    done
}

# attack_config FILE: write_proxy_config plus $ORG (certificate example.org) on the recorder.
attack_config() {
    local file=$1
    write_proxy_config "$file"
    [ -r "$XTP_CERTS/$ORG.crt" ] || fail "test certificate missing: $XTP_CERTS/$ORG.crt"
    "$PY" - "$file" "$ORG" "$XTP_CERTS/$ORG.crt" "$XTP_CERTS/$ORG.key" "$RECORDER_PORT" <<'EOF'
import sys
path, dom, crt, key, port = sys.argv[1:]
lines = open(path).read().splitlines(True)
i = next(n for n, l in enumerate(lines) if l.startswith("listeners:"))
lines[i:i] = [f"  {dom}:\n", f"    cert: {crt}\n", f"    key: {key}\n",
              f"    backend: {{ c2s: \"127.0.0.1:{port}\" }}\n"]
open(path, "w").writelines(lines)
EOF
}

# Under ASan (make test) freed memory sits in a quarantine of 256 MiB by default, which would
# make every RSS bound meaningless; a small one still catches a use-after-free of recent memory.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1:thread_local_quarantine_size_kb=64"

# attack_setup [GUARD_MODE]: jabberd2, recorder, proxy, guard (see the top of this file).
attack_setup() {
    start_jabberd2 "$DOMAIN"
    start_recorder
    attack_config "$T/proxy.yaml"
    start_proxy "$T/proxy.yaml"
    start_guard "${1:-direct}"
}

# start_guard MODE: alice logs in through the proxy over MODE and keeps asking for her roster.
start_guard() {
    local mode=$1 port=$PROXY_DIRECT_PORT
    [ "$mode" = starttls ] && port=$PROXY_STARTTLS_PORT
    rm -f "$T/guard.ready" "$T/guard.stop"
    bg "$PY" "$LIB_DIR/guard.py" --mode "$mode" --port "$port" --ca "$CA" --domain "$DOMAIN" \
        --ready "$T/guard.ready" --stop "$T/guard.stop" --max-latency "${GUARD_MAX_LATENCY:-5}" \
        >"$T/guard.out" 2>&1
    GUARD_PID=$BG_PID
    wait_until 15 test -e "$T/guard.ready" || {
        cat "$T/guard.out"
        fail "the guard session did not log in"
    }
}

# stop_guard: the guard must still be logged in and answered on time, then it leaves cleanly.
stop_guard() {
    touch "$T/guard.stop"
    wait "$GUARD_PID" || {
        cat "$T/guard.out"
        fail "the guard session next to the attacks broke"
    }
    log "guard session unaffected: $(cat "$T/guard.out")"
}

# rss_kib: the proxy's resident set now.
rss_kib() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$PROXY_PID/status"
}

# rss_check LABEL BEFORE MAX_GROWTH_KIB: the proxy grew by at most MAX_GROWTH_KIB since BEFORE.
rss_check() {
    local now
    now=$(rss_kib)
    [ $((now - $2)) -le "$3" ] ||
        fail "$1: the proxy's RSS grew from $2 to $now KiB (allowed: $3 KiB)"
    log "$1: RSS $2 -> $now KiB (allowed growth $3 KiB)"
}

# attack_mark: start counting the proxy's log lines here (see expect_closes).
attack_mark() {
    proxy_mark
}

# expect_closes N REASON_RE [ERROR_RE [OPENED]]: since attack_mark, exactly N sessions logged
# anything, each exactly one line, its close line, with reason= matching REASON_RE (and the
# rest of the line matching ERROR_RE); no other line names a session. With OPENED=opened, each
# session reached the relay and so also has its one open line (design.md §9), nothing else.
# Waits up to 5 s for the lines.
expect_closes() {
    local n=$1 errre=${3:-.} opened=${4:-}
    # shellcheck disable=SC2016 # expanded by eval, each time it is polled
    wait_until 5 eval '[ "$(proxy_log_new | grep -Ec "$PROXY_CLOSE_RE")" -ge "$n" ]' || true
    proxy_log_new | "$PY" -c '
import re, sys
n, reason, errre, opened = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4] == "opened"
lines = {}
for line in sys.stdin:
    m = re.search(r"\bconn=(\d+)\b", line)
    if m:
        lines.setdefault(m.group(1), []).append(line.rstrip())
bad = []
if len(lines) != n:
    bad.append(f"{len(lines)} sessions logged, expected {n}")
for cid, ls in lines.items():
    if opened:
        if len(ls) != 2 or not re.search(r" open( |$)", ls[0]):
            bad.append(f"conn={cid}: {len(ls)} lines, expected its open and close lines: {ls}")
            continue
        ls = ls[1:]
    elif len(ls) != 1:
        bad.append(f"conn={cid}: {len(ls)} lines, expected only its close line: {ls}")
        continue
    m = re.search(r" close reason=(\S+)", ls[0])
    if not m or not re.fullmatch(reason, m.group(1)) or not re.search(errre, ls[0]):
        bad.append(f"conn={cid}: expected reason={reason} matching /{errre}/: {ls[0]}")
for b in bad[:10]:
    print("expect_closes: " + b)
sys.exit(1 if bad else 0)
' "$n" "$2" "$errre" "$opened" || fail "the proxy's log lines for the attack are not as expected"
}
