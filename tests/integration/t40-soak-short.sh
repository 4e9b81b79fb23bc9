#!/bin/bash
# t40-soak-short: the 3-minute variant of the soak (`make soak` runs the 30-minute one), against
# the build ctest uses (the ASan+UBSan one in `make test`). scripts/soak.sh starts jabberd2 and
# the proxy ($XTP_BIN), runs tests/soak/xtp-soak and judges: no lost, duplicated, reordered,
# corrupted or misrouted message, no failed session, the proxy's descriptors back at their
# baseline and its session gauge at 0 after the run, its RSS within the tolerance between a
# window after warm-up and the last window before the teardown, a clean SIGTERM exit and no
# sanitizer report.
#
# Sizes, chosen for ASan on 2 shared vCPUs within 3.5 minutes of wall time (about 2.7 are the
# client's run, the rest jabberd2's start and stop and the proxy's settling):
#   - 400 sessions, not 2,000: under ASan a full TLS handshake costs the proxy and the client
#     about 3x their Release CPU, and with 2,000 sessions the ramp alone took most of a minute
#     of two saturated cores, which leaves no steady phase to judge RSS on; 400 sessions still
#     rotate about 1,500 logins through the proxy (10/s, pair lifetimes 4-76 s), with every
#     leaving kind (graceful, FIN, RST), both listeners and TLS 1.2 and 1.3.
#   - 1 message per second and session (about 400 messages/s, some 60,000 in a run).
#   - ASan keeps freed memory in its quarantine (256 MiB by default) until the quarantine is
#     full, which would show as RSS growth in a 3-minute run: the proxy runs with a 16 MiB
#     quarantine (ASAN_OPTIONS quarantine_size_mb=16, still enough to catch a use after free of
#     recently freed memory), which fills during the warm-up.
#   - RSS windows of 30 s: from 45 s after the ramp, and the last 30 s before the teardown;
#     tolerance 5%, as for the long soak.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CLIENT=${XTP_SOAK_CLIENT:-$XTP_BUILD/tests/soak/xtp-soak}
[ -x "$XTP_BIN" ] || skip "proxy binary not built: $XTP_BIN"
[ -x "$CLIENT" ] || skip "soak client not built: $CLIENT (tests/soak/CMakeLists.txt)"
[ -x /usr/sbin/jabberd2-c2s ] || skip "jabberd2 not installed (scripts/deps.sh test)"
need_cmd sqlite3 ss

asan=${ASAN_OPTIONS:-}
export ASAN_OPTIONS=${asan:+$asan:}quarantine_size_mb=16
export XTP_SOAK_CLIENT=$CLIENT
export XTP_SOAK_DURATION=${XTP_SOAK_DURATION:-160}
export XTP_SOAK_SESSIONS=${XTP_SOAK_SESSIONS:-400}
export XTP_SOAK_RATE=${XTP_SOAK_RATE:-1}
export XTP_SOAK_RAMP=${XTP_SOAK_RAMP:-40}
export XTP_SOAK_CHURN=${XTP_SOAK_CHURN:-10}
export XTP_SOAK_WARMUP=${XTP_SOAK_WARMUP:-45}
export XTP_SOAK_WINDOW=${XTP_SOAK_WINDOW:-30}
export XTP_SOAK_ARGS=${XTP_SOAK_ARGS:---status 20}
export XTP_BIN

start=$SECONDS
rc=0
TMPDIR=$T bash "$XTP_SRC/scripts/soak.sh" "$XTP_BUILD" >"$T/soak.out" 2>&1 || rc=$?
cat "$T/soak.out"
log "soak.sh exited with $rc after $((SECONDS - start)) s"
case "$rc" in
0) pass ;;
1) fail "the soak found a violation (see the FAIL lines above)" ;;
*) fail "the soak could not run (exit $rc)" ;;
esac
