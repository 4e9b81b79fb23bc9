#!/bin/bash
# t29-fd-limit: limits.max_connections against the open-file limit (2 descriptors per session
# plus a few dozen). A soft limit below what the configuration needs is raised towards the
# hard one, at start and at SIGHUP, with a log line; a hard limit below it draws a warning
# that names both numbers and how many sessions fit. No backend is needed: only start-up.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge 10100 ] || skip "ulimit -Hn is $hard; this test needs 10100"

# 1. Soft 256, max_connections 1000: raised to 2 * 1000 + 64 at start.
ulimit -Sn 256
MAX_CONNECTIONS=1000 write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
wait_proxy_log 'raised the open-file limit from 256 to 2064 for limits\.max_connections 1000' ||
    fail "no 'raised the open-file limit' line: $(grep -i 'open-file' "$PROXY_LOG")"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$PROXY_PID/limits")
[ "$soft" = 2064 ] || fail "the proxy's soft limit is $soft, expected 2064"
proxy_log_has 'needs about .* open files' && fail "a warning although the hard limit suffices"

# 2. SIGHUP with max_connections 5000: raised again, to 10064.
sed -i 's/max_connections: 1000/max_connections: 5000/' "$T/proxy.yaml"
kill -HUP "$PROXY_PID"
wait_proxy_log 'raised the open-file limit from 2064 to 10064 for limits\.max_connections 5000' ||
    fail "the reload did not raise the limit: $(grep -i 'open-file\|reload' "$PROXY_LOG" | tail -3)"
soft=$(awk '/^Max open files/ { print $4 }' "/proc/$PROXY_PID/limits")
[ "$soft" = 10064 ] || fail "after the reload the soft limit is $soft, expected 10064"
proxy_alive || fail "the proxy died"
stop_proxy

# 3. Hard limit 300 (a child shell's own): the limit cannot be raised, so a warning says how
#    many sessions fit: (300 - 64) / 2 = 118. The proxy still starts.
log2=$T/hard.log
PROXY_STARTTLS_PORT=$(free_port) PROXY_DIRECT_PORT=$(free_port) MAX_CONNECTIONS=1000 \
    write_proxy_config "$T/hard.yaml"
(
    ulimit -Hn 300 -Sn 300
    exec "$XTP_BIN" -c "$T/hard.yaml"
) </dev/null >"$log2" 2>&1 &
pid=$!
has_warning() { grep -Eq 'limits\.max_connections 1000 needs about 2064 open files \(2 per session\) but the limit is 300 \(hard 300\): past about 118 sessions' "$log2"; }
wait_until 5 has_warning || fail "no warning about the hard limit: $(cat "$log2")"
grep -q 'running with' "$log2" || wait_until 5 grep -q 'running with' "$log2" ||
    fail "the proxy did not start under a short hard limit: $(tail -3 "$log2")"
grep -q 'raised the open-file limit' "$log2" && fail "it claims to have raised a limit already at its hard value"
stop_pid "$pid"
[ "$STOP_STATUS" = 0 ] || fail "the proxy under a short hard limit exited with $STOP_STATUS"
pass
