#!/bin/bash
# soak.sh: the soak test (`make soak`; tests/integration/t40-soak-short.sh runs a short variant
# against the ASan build). Starts a private jabberd2 and the proxy on loopback, runs
# tests/soak/xtp-soak (2,000 sessions exchanging numbered, checksummed messages through the
# proxy with continuous connect/disconnect churn; its header comment states the rules), samples
# the proxy's open descriptors (/proc/PID/fd) and VmRSS, and judges:
#   - the client saw no lost, duplicated, reordered, corrupted or misrouted message, no bounce,
#     no failed session, and as many sessions closed as opened;
#   - the proxy's open descriptors are back at their baseline (taken before the first session)
#     once every session has ended, and its xtp_sessions gauge (/metrics) is back at 0;
#   - the proxy's RSS, averaged over XTP_SOAK_WINDOW seconds starting XTP_SOAK_WARMUP seconds
#     after the ramp (every session pair up once), and averaged over the last XTP_SOAK_WINDOW
#     seconds before the teardown, differ by at most XTP_SOAK_RSS_TOLERANCE percent (both
#     windows are under the same load, so a difference is growth, not load);
#   - the proxy is alive at the end, leaves within 5 s of SIGTERM with status 0, and its log
#     holds no sanitizer report.
#
#   scripts/soak.sh BUILD_DIR
#
# BUILD_DIR holds xmpp-tls-proxy and tests/soak/xtp-soak (the normal CMake build; nothing is
# built here). XTP_BIN overrides the proxy binary, XTP_SOAK_CLIENT the client.
# Environment (defaults in brackets):
#   XTP_SOAK_DURATION [1800]  seconds of the client run, ramp included, teardown excluded
#   XTP_SOAK_SESSIONS [2000]  sessions kept logged in (an even number)
#   XTP_SOAK_RATE [0.5]       messages per second and session
#   XTP_SOAK_RAMP [50]        logins per second until every pair has been up once
#   XTP_SOAK_CHURN [10]       logins per second at most afterwards (pair lifetimes average
#                             1.25*SESSIONS/CHURN seconds, from 0.1x to 1.9x that, so
#                             logins run at about 80% of it)
#   XTP_SOAK_WARMUP [300]     seconds after the ramp before the first RSS window
#   XTP_SOAK_WINDOW [60]      seconds averaged for each RSS value
#   XTP_SOAK_RSS_TOLERANCE [5]  percent
#   XTP_SOAK_SAMPLE [2]       seconds between samples
#   XTP_SOAK_ARGS []          more xtp-soak options (xtp-soak --help)
#   XTP_SOAK_LOG_LEVEL [info] the proxy's log level
#   XTP_SOAK_PLAIN=1          the baseline: the client logs in to jabberd2 itself, without TLS
#                             and without the proxy (which still runs, idle), to tell the
#                             backend's own failures from the proxy's
#   XTP_SOAK_FAULTS=1         the checker's self-test: the client logs in to jabberd2 (plain,
#                             no proxy) through tests/soak/fault-relay.py, which drops,
#                             duplicates, reorders and corrupts messages on purpose; the run
#                             passes only when the client counts exactly the faults the relay
#                             made (lost = dropped + corrupted, dup, reordered, bad checksum),
#                             each at least once, and nothing else. No fd or RSS verdict.
#   XTP_SOAK_KEEP=1           keep the work folder (logs, samples.tsv) after success
# Everything listens on 127.0.0.1, on free ports. Samples go to WORK/samples.tsv (seconds since
# the proxy started, proxy fds, proxy VmRSS KB, jabberd2 c2s fds, client phase).
#
# Every process started here is stopped on exit (trap). The client bounds its own run
# (--timeout) and the script kills it 180 s after the planned end. Exit status: 0 when every
# check passed, 1 when one failed (the summary line says which), 2 on bad usage or when the
# servers could not start.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DOMAIN=example.test
CERTS=${XTP_CERTS:-$SRC/tests/certs}
DURATION=${XTP_SOAK_DURATION:-1800}
SESSIONS=${XTP_SOAK_SESSIONS:-2000}
RATE=${XTP_SOAK_RATE:-0.5}
RAMP=${XTP_SOAK_RAMP:-50}
CHURN=${XTP_SOAK_CHURN:-10}
WARMUP=${XTP_SOAK_WARMUP:-300}
WINDOW=${XTP_SOAK_WINDOW:-60}
TOL=${XTP_SOAK_RSS_TOLERANCE:-5}
SAMPLE=${XTP_SOAK_SAMPLE:-2}
LOG_LEVEL=${XTP_SOAK_LOG_LEVEL:-info}
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

die() {
    printf 'soak.sh: %s\n' "$*" >&2
    exit 2
}
say() { printf 'soak.sh: %s\n' "$*" >&2; }

[ $# -eq 1 ] || die "usage: scripts/soak.sh BUILD_DIR"
[ -d "$1" ] || die "no build folder $1"
BUILD=$(cd "$1" && pwd)
PROXY=${XTP_BIN:-$BUILD/xmpp-tls-proxy}
CLIENT=${XTP_SOAK_CLIENT:-$BUILD/tests/soak/xtp-soak}
for f in "$PROXY" "$CLIENT"; do
    [ -x "$f" ] || die "$f not found: build first (cmake --build $BUILD)"
done
for v in DURATION SESSIONS WARMUP WINDOW SAMPLE; do
    case "${!v}" in
    '' | *[!0-9]*) die "$v must be a whole number, not '${!v}'" ;;
    esac
done
for v in RATE RAMP CHURN TOL; do
    case "${!v}" in
    '' | *[!0-9.]* | *.*.*) die "$v must be a number, not '${!v}'" ;;
    esac
done
if [ $((SESSIONS % 2)) -ne 0 ] || [ "$SESSIONS" -lt 2 ]; then
    die "XTP_SOAK_SESSIONS must be even"
fi
[ "$SAMPLE" -ge 1 ] || die "XTP_SOAK_SAMPLE must be at least 1"
command -v sqlite3 >/dev/null || die "sqlite3 not found (scripts/deps.sh test)"
[ -x /usr/sbin/jabberd2-c2s ] || die "jabberd2 not installed (scripts/deps.sh test)"
ACCOUNTS=$((SESSIONS + SESSIONS / 4))

# Descriptors: the proxy holds two per session (peer and backend) and sessions that are
# closing; jabberd2's c2s one per session; the client one.
need=$((SESSIONS * 3 + 512))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    die "ulimit -Hn is $hard; $SESSIONS sessions need $need descriptors"
fi
[ "$hard" != unlimited ] || hard=$((need > 65536 ? need : 65536))
ulimit -n "$hard"

free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xtp-soak.XXXXXX")
PROXY_PID=
CLIENT_PID=
RELAY_PID=
FAULTS=${XTP_SOAK_FAULTS:-0}
PROXY_LOG=$WORK/proxy.log
cleanup() {
    local rc=$? i pid
    trap - EXIT INT TERM
    set +e
    for pid in "$CLIENT_PID" "$RELAY_PID"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            wait "$pid" 2>/dev/null
        fi
    done
    if [ -n "$PROXY_PID" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
        kill -TERM "$PROXY_PID"
        for ((i = 0; i < 50; i++)); do
            kill -0 "$PROXY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$PROXY_PID" 2>/dev/null
        wait "$PROXY_PID" 2>/dev/null
    fi
    "$SRC/scripts/jabberd2-local.sh" stop "$WORK/jabberd2" >/dev/null 2>&1
    if [ "$rc" -eq 0 ] && [ "${XTP_SOAK_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        printf 'soak.sh: logs and samples kept in %s\n' "$WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- servers ----------------------------------------------------------------------------
BACKEND_PORT=$(free_port)
STARTTLS_PORT=$(free_port)
DIRECT_PORT=$(free_port)
ADMIN_PORT=$(free_port)
say "work folder $WORK; jabberd2 c2s on 127.0.0.1:$BACKEND_PORT, proxy STARTTLS :$STARTTLS_PORT, Direct TLS :$DIRECT_PORT"

# A private copy of jabberd2's configuration: c2s's <max_fds> (1024 in Debian's file) with room
# for every session, and no offline storage: a message for a session that is gone is dropped,
# never stored and delivered to a later login of the same account (xtp-soak's loss rule
# relies on that).
mkdir -p "$WORK/etc"
cp -r "${JABBERD2_ETC:-/etc/jabberd2}/." "$WORK/etc/"
"$PYTHON" - "$WORK/etc" "$need" <<'EOF'
import sys
import xml.etree.ElementTree as ET

d, fds = sys.argv[1], sys.argv[2]

def sub(parent, tag):
    el = parent.find(tag)
    return el if el is not None else ET.SubElement(parent, tag)

t = ET.parse(f"{d}/c2s.xml")
el = t.getroot().find("io/max_fds")
if el is None:
    sys.exit("soak.sh: io/max_fds missing in c2s.xml")
el.text = fds
t.write(f"{d}/c2s.xml", encoding="utf-8", xml_declaration=False)

t = ET.parse(f"{d}/sm.xml")
r = t.getroot()
sub(sub(r, "offline"), "dropmessages")
sub(sub(r, "amp"), "offlinestoragedisabled")
t.write(f"{d}/sm.xml", encoding="utf-8", xml_declaration=False)
EOF
JABBERD2_ETC=$WORK/etc JABBERD2_USERS="soakprobe:soakprobe" \
    "$SRC/scripts/jabberd2-local.sh" start "$WORK/jabberd2" "$DOMAIN" "$BACKEND_PORT" >/dev/null ||
    die "jabberd2 did not start"
C2S_PID=$(awk '$1 == "c2s" { print $2 }' "$WORK/jabberd2/pids")
# The accounts u1..uACCOUNTS (password p), in one transaction. Both rows are needed: authreg
# for the password, active or the sm never starts a session (scripts/jabberd2-local.sh).
awk -v n="$ACCOUNTS" -v d="$DOMAIN" 'BEGIN {
    print "BEGIN;"
    for (i = 1; i <= n; i++) {
        printf "INSERT INTO authreg(username, realm, password) VALUES(\"u%d\", \"%s\", \"p\");\n", i, d
        printf "INSERT INTO active(\"collection-owner\", \"time\") VALUES(\"u%d@%s\", strftime(\"%%s\",\"now\"));\n", i, d
    }
    print "COMMIT;"
}' | sqlite3 "$WORK/jabberd2/jabberd2.db" || die "could not add $ACCOUNTS accounts to jabberd2's database"

cat >"$WORK/proxy.yaml" <<EOF
log: { level: $LOG_LEVEL }
admin: { listen: "127.0.0.1:$ADMIN_PORT" }
tls: { min_version: "1.2" }
domains:
  $DOMAIN:
    cert: $CERTS/$DOMAIN.crt
    key: $CERTS/$DOMAIN.key
    backend: { c2s: "127.0.0.1:$BACKEND_PORT" }
listeners:
  - { name: c2s, listen: "127.0.0.1:$STARTTLS_PORT", kind: c2s, tls: starttls }
  - { name: c2s-direct, listen: "127.0.0.1:$DIRECT_PORT", kind: c2s, tls: direct }
limits:
  max_stanza: 256KiB
  handshake_timeout: 30s
  max_connections: $((SESSIONS * 2 + 64))
  drain_timeout: 0s
EOF
"$PROXY" -c "$WORK/proxy.yaml" </dev/null >"$PROXY_LOG" 2>&1 &
PROXY_PID=$!
T0=$EPOCHREALTIME

# wait_port PORT: until the proxy itself listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PROXY_PID" 2>/dev/null || return 1
        ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$PROXY_PID," && return 0
        sleep 0.1
    done
    return 1
}
for p in "$STARTTLS_PORT" "$DIRECT_PORT" "$ADMIN_PORT"; do
    wait_port "$p" || die "the proxy does not listen on 127.0.0.1:$p (see $PROXY_LOG)"
done

fd_count() {
    local -a fds=("/proc/$1/fd/"*)
    echo "${#fds[@]}"
}
rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}
elapsed() {
    awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}
# metric NAME: the sum of a family's samples on the proxy's /metrics, or "?" when unreachable.
metric() {
    "$PYTHON" - "$ADMIN_PORT" "$1" <<'EOF' 2>/dev/null || echo "?"
import sys, urllib.request
port, name = sys.argv[1], sys.argv[2]
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
total = 0
for line in text.splitlines():
    if line.startswith(name + "{") or line.startswith(name + " "):
        total += float(line.rsplit(" ", 1)[1])
print(int(total))
EOF
}

sleep 1
FD_BASE=$(fd_count "$PROXY_PID")
RSS_BASE=$(rss_kb "$PROXY_PID")
say "proxy pid $PROXY_PID: $FD_BASE descriptors, VmRSS $RSS_BASE KB before the first session"

# ---- the run ----------------------------------------------------------------------------
# shellcheck disable=SC2206 # XTP_SOAK_ARGS is split on purpose
extra=(${XTP_SOAK_ARGS:-})
if [ "$FAULTS" = 1 ]; then
    "$PYTHON" "$SRC/tests/soak/fault-relay.py" --listen 127.0.0.1:0 \
        --connect "127.0.0.1:$BACKEND_PORT" --port-file "$WORK/relay.port" \
        --stats "$WORK/relay.stats" --max-seconds $((DURATION + 300)) \
        </dev/null >"$WORK/relay.log" 2>&1 &
    RELAY_PID=$!
    for ((i = 0; i < 100; i++)); do
        [ -s "$WORK/relay.port" ] && break
        kill -0 "$RELAY_PID" 2>/dev/null || die "fault-relay.py exited: $(cat "$WORK/relay.log")"
        sleep 0.1
    done
    [ -s "$WORK/relay.port" ] || die "fault-relay.py did not listen within 10 s"
    target=(--plain-port "$(cat "$WORK/relay.port")" --drain 3)
    say "XTP_SOAK_FAULTS=1: the client talks to jabberd2 through fault-relay.py, which breaks messages on purpose"
elif [ "${XTP_SOAK_PLAIN:-0}" = 1 ]; then
    target=(--plain-port "$BACKEND_PORT")
    say "XTP_SOAK_PLAIN=1: the client talks to jabberd2 directly (no TLS, no proxy)"
else
    target=(--starttls-port "$STARTTLS_PORT" --direct-port "$DIRECT_PORT" --ca "$CERTS/ca.crt")
fi
say "xtp-soak: $SESSIONS sessions, $RATE msg/s each, ramp $RAMP/s, churn $CHURN/s, ${DURATION} s"
"$CLIENT" "${target[@]}" --domain "$DOMAIN" -n "$SESSIONS" --accounts "$ACCOUNTS" --first-account 1 \
    --user-prefix u --password p --duration "$DURATION" --rate "$RATE" --ramp "$RAMP" \
    --churn "$CHURN" --ready-file "$WORK/ready" --teardown-file "$WORK/teardown" \
    "${extra[@]}" >"$WORK/client.out" 2>"$WORK/client.err" &
CLIENT_PID=$!

printf 't_s\tproxy_fds\tproxy_rss_kb\tc2s_fds\tphase\n' >"$WORK/samples.tsv"
limit=$((DURATION + 180))
killed=0
while kill -0 "$CLIENT_PID" 2>/dev/null; do
    phase=ramp
    [ -f "$WORK/ready" ] && phase=steady
    [ -f "$WORK/teardown" ] && phase=teardown
    kill -0 "$PROXY_PID" 2>/dev/null || break
    printf '%s\t%s\t%s\t%s\t%s\n' "$(elapsed)" "$(fd_count "$PROXY_PID")" "$(rss_kb "$PROXY_PID")" \
        "$(fd_count "$C2S_PID" 2>/dev/null || echo 0)" "$phase" >>"$WORK/samples.tsv"
    if [ "${XTP_SOAK_VERBOSE:-0}" = 1 ]; then tail -n 1 "$WORK/samples.tsv" >&2; fi
    if awk -v e="$(elapsed)" -v l="$limit" 'BEGIN { exit !(e > l) }'; then
        say "the client is still running ${limit} s after the start: killing it"
        kill -TERM "$CLIENT_PID" 2>/dev/null || true
        killed=1
        break
    fi
    sleep "$SAMPLE"
done
client_rc=0
wait "$CLIENT_PID" || client_rc=$?
CLIENT_PID=
proxy_alive=1
kill -0 "$PROXY_PID" 2>/dev/null || proxy_alive=0

# Every session has ended on the client's side; the proxy may still be draining some (it
# reads a closing peer's input for up to 2 s). Wait, bounded, for the descriptors to settle.
fd_end='?'
rss_idle='?'
sessions_live='?'
sessions_total='?'
if [ "$proxy_alive" = 1 ]; then
    for ((i = 0; i < 150; i++)); do
        fd_end=$(fd_count "$PROXY_PID")
        [ "$fd_end" -le "$FD_BASE" ] && break
        sleep 0.1
    done
    sleep 0.5
    fd_end=$(fd_count "$PROXY_PID")
    rss_idle=$(rss_kb "$PROXY_PID")
    sessions_live=$(metric xtp_sessions)
    sessions_total=$(metric xtp_sessions_total)
fi

# ---- the proxy stops --------------------------------------------------------------------
stop_status=0
stop_killed=0
if [ "$proxy_alive" = 1 ]; then
    kill -TERM "$PROXY_PID"
    for ((i = 0; i < 50; i++)); do
        kill -0 "$PROXY_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PROXY_PID" 2>/dev/null; then
        stop_killed=1
        kill -KILL "$PROXY_PID" 2>/dev/null || true
    fi
fi
wait "$PROXY_PID" || stop_status=$?
PROXY_PID=

# ---- judging ----------------------------------------------------------------------------
cat "$WORK/client.out"
result=$(grep '^SOAK ' "$WORK/client.out" | tail -n 1 || true)
kv() { tr ' ' '\n' <<<"$result" | sed -n "s/^$1=//p"; }

# The checker's self-test: what the client counted must be exactly what the relay did.
if [ "$FAULTS" = 1 ]; then
    stats=$(cat "$WORK/relay.stats" 2>/dev/null || true)
    fk() { tr ' ' '\n' <<<"$stats" | sed -n "s/^$1=//p"; }
    d=$(fk dropped) u=$(fk duplicated) r=$(fk reordered) c=$(fk corrupted)
    fails=()
    [ -n "$result" ] || fails+=("the client printed no SOAK line (see $WORK/client.err)")
    [ "$client_rc" = 1 ] || fails+=("the client exited with $client_rc, not 1 (violations found)")
    for n in "$d" "$u" "$r" "$c"; do
        [ -n "$n" ] && [ "$n" -gt 0 ] || fails+=("the relay did not make every kind of fault ($stats)")
    done
    if [ ${#fails[@]} -eq 0 ]; then
        [ "$(kv lost)" = $((d + c)) ] || fails+=("lost=$(kv lost), expected dropped+corrupted=$((d + c))")
        [ "$(kv dup)" = "$u" ] || fails+=("dup=$(kv dup), expected $u")
        [ "$(kv reordered)" = "$r" ] || fails+=("reordered=$(kv reordered), expected $r")
        [ "$(kv bad_checksum)" = "$c" ] || fails+=("bad_checksum=$(kv bad_checksum), expected $c")
        for k in misrouted bounced foreign errors excused; do
            [ "$(kv "$k")" = 0 ] || fails+=("$k=$(kv "$k"), expected 0")
        done
        [ "$(kv sessions_opened)" = "$(kv sessions_closed)" ] ||
            fails+=("sessions opened $(kv sessions_opened), closed $(kv sessions_closed)")
    fi
    verdict=PASS
    [ ${#fails[@]} -eq 0 ] || verdict=FAIL
    printf 'soak: FAULTS RESULT verdict=%s injected dropped=%s duplicated=%s reordered=%s corrupted=%s counted lost=%s dup=%s reordered=%s bad_checksum=%s sent=%s received=%s\n' \
        "$verdict" "$d" "$u" "$r" "$c" "$(kv lost)" "$(kv dup)" "$(kv reordered)" \
        "$(kv bad_checksum)" "$(kv sent)" "$(kv received)"
    if [ ${#fails[@]} -gt 0 ]; then
        for f in "${fails[@]}"; do say "FAIL: $f"; done
        tail -n 30 "$WORK/client.err" >&2
        exit 1
    fi
    exit 0
fi

# RSS windows: [ready + WARMUP, + WINDOW) and [teardown - WINDOW, teardown), where ready and
# teardown are the times the client wrote in its files (seconds since the epoch).
stamp() {
    if [ -f "$1" ]; then
        awk -v t0="$T0" 'NR == 1 { printf "%.1f", $1 - t0 }' "$1"
    fi
}
T_READY=$(stamp "$WORK/ready")
T_TEARDOWN=$(stamp "$WORK/teardown")
rss_line=$(awk -F'\t' -v tr="$T_READY" -v td="$T_TEARDOWN" -v warm="$WARMUP" -v win="$WINDOW" '
    NR == 1 { next }
    { t[NR] = $1; r[NR] = $3; n = NR; if ($3 > max) max = $3 }
    END {
        if (tr == "" || td == "") { print "none"; exit }
        a0 = tr + warm; a1 = a0 + win; b1 = td; b0 = td - win
        if (b0 < a1) { printf "short %.0f %.0f\n", a1, b0; exit }
        for (i = 2; i <= n; i++) {
            if (t[i] >= a0 && t[i] < a1) { sa += r[i]; na++ }
            if (t[i] >= b0 && t[i] < b1) { sb += r[i]; nb++ }
        }
        if (na == 0 || nb == 0) { print "none"; exit }
        printf "ok %.0f %.0f %+.2f %d %d %.0f %.0f %.0f\n", sa / na, sb / nb,
            (sb / nb - sa / na) * 100 / (sa / na), na, nb, a0, b0, max
    }' "$WORK/samples.tsv")

fails=()
[ "$killed" = 0 ] || fails+=("the client overran its time")
[ -n "$result" ] || fails+=("the client printed no SOAK line (exit $client_rc; see $WORK/client.err)")
[ "$client_rc" = 0 ] || fails+=("the client reported violations (exit $client_rc)")
[ "$proxy_alive" = 1 ] || fails+=("the proxy died during the run")
[ "$fd_end" = "$FD_BASE" ] || fails+=("proxy descriptors: $FD_BASE before, $fd_end after every session ended")
[ "$sessions_live" = 0 ] || fails+=("the proxy's xtp_sessions gauge is $sessions_live after every session ended")
[ "$stop_killed" = 0 ] || fails+=("the proxy did not exit within 5 s of SIGTERM")
[ "$stop_killed" = 1 ] || [ "$stop_status" = 0 ] || fails+=("the proxy exited with status $stop_status")
if grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$PROXY_LOG"; then
    fails+=("sanitizer report in the proxy log")
fi
rss_warm='?' rss_end='?' rss_pct='?' rss_max='?'
read -r kind a b c na nb a0 b0 mx <<<"$rss_line" || true
case "$kind" in
ok)
    rss_warm=$a rss_end=$b rss_pct=$c rss_max=$mx
    say "ramp done at t=${T_READY} s, teardown at t=${T_TEARDOWN} s; RSS averaged over ${WINDOW} s from t=${a0} s ($na samples) and from t=${b0} s ($nb samples)"
    awk -v p="$c" -v tol="$TOL" 'BEGIN { exit !(p <= tol && p >= -tol) }' ||
        fails+=("proxy RSS changed by ${c}% after warm-up (${a} KB -> ${b} KB; tolerance ${TOL}%)")
    ;;
short)
    fails+=("run too short to judge RSS: the warm window ends at t=${a} s, the last window starts at t=${b} s (raise XTP_SOAK_DURATION or lower XTP_SOAK_WARMUP/WINDOW)")
    ;;
*)
    fails+=("no RSS samples for the windows (the ramp or the teardown never showed)")
    ;;
esac

# The proxy's end reasons, for the record.
reasons=$({ grep -o 'close reason=[a-z0-9-]*' "$PROXY_LOG" || true; } | sort | uniq -c |
    awk '{ sub(/^reason=/, "", $3); printf "%s%s=%s", sep, $3, $1; sep = " " }')
say "proxy sessions by end reason: ${reasons:-none logged} (xtp_sessions_total ${sessions_total:-?})"

verdict=PASS
[ ${#fails[@]} -eq 0 ] || verdict=FAIL
printf 'soak: RESULT verdict=%s sent=%s received=%s lost=%s dup=%s reordered=%s bad_checksum=%s misrouted=%s bounced=%s errors=%s backend_refused=%s sessions_opened=%s sessions_closed=%s fd_start=%s fd_end=%s rss_base_kb=%s rss_warm_kb=%s rss_end_kb=%s rss_change_pct=%s rss_max_kb=%s rss_idle_kb=%s\n' \
    "$verdict" "$(kv sent)" "$(kv received)" "$(kv lost)" "$(kv dup)" "$(kv reordered)" \
    "$(kv bad_checksum)" "$(kv misrouted)" "$(kv bounced)" "$(kv errors)" "$(kv backend_refused)" \
    "$(kv sessions_opened)" "$(kv sessions_closed)" "$FD_BASE" "$fd_end" "$RSS_BASE" \
    "$rss_warm" "$rss_end" "$rss_pct" "$rss_max" "$rss_idle"
if [ ${#fails[@]} -gt 0 ]; then
    for f in "${fails[@]}"; do say "FAIL: $f"; done
    say "client stderr (last 30 lines):"
    tail -n 30 "$WORK/client.err" >&2
    exit 1
fi
exit 0
