#!/bin/bash
# t40-soak-short: the 3-minute variant of the soak (`make soak` runs the 30-minute one), against
# the build ctest uses (the ASan+UBSan one in `make test`). scripts/soak.sh starts jabberd2 and
# the proxy ($XTP_BIN), runs tests/soak/xtp-soak and judges: no lost, duplicated, reordered,
# corrupted or misrouted message, no failed session, the proxy's descriptors back at their
# baseline and its session gauge at 0 after the run, its RSS within the tolerance between a
# window after warm-up and the last window before the teardown, a clean SIGTERM exit and no
# sanitizer report.
#
# Sizes, for ASan+UBSan on 2 shared vCPUs within 3.5 minutes of wall time (measured: about
# 175 s, of which 160 s are the client's run and the rest jabberd2's start and stop, the
# 2,500 accounts and the proxy's settling):
#   - 2,000 sessions, as in the long soak. 2,000 is not too slow under ASan: the ramp (50
#     logins/s) takes about 45 s and the whole run costs about 0.4 of a core on average. The
#     RSS windows still fit if the ramp takes twice as long on a busy machine.
#   - Churn 20 logins/s at most (pair lifetimes 12-237 s, mean 125 s), twice the long soak's,
#     so that about 3,500 logins go through the proxy in the run, with every leaving kind
#     (graceful, FIN, RST), both listeners, TLS 1.2 and 1.3, full and resumed handshakes.
#   - 0.5 messages per second and session: about 1,000 messages/s, some 100,000 in a run.
#   - RSS windows of 20 s: from 30 s after the ramp, and the last 20 s before the teardown;
#     tolerance 5%, as for the long soak. ASan's quarantine (256 MiB by default) fills during
#     the ramp, so it does not show as growth; ASAN_OPTIONS is left as ctest sets it.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CLIENT=${XTP_SOAK_CLIENT:-$XTP_BUILD/tests/soak/xtp-soak}
[ -x "$XTP_BIN" ] || skip "proxy binary not built: $XTP_BIN"
[ -x "$CLIENT" ] || skip "soak client not built: $CLIENT (tests/soak/CMakeLists.txt)"
[ -x /usr/sbin/jabberd2-c2s ] || skip "jabberd2 not installed (scripts/deps.sh test)"
need_cmd sqlite3 ss

export XTP_SOAK_CLIENT=$CLIENT
export XTP_SOAK_DURATION=${XTP_SOAK_DURATION:-160}
export XTP_SOAK_SESSIONS=${XTP_SOAK_SESSIONS:-2000}
export XTP_SOAK_RATE=${XTP_SOAK_RATE:-0.5}
export XTP_SOAK_RAMP=${XTP_SOAK_RAMP:-50}
export XTP_SOAK_CHURN=${XTP_SOAK_CHURN:-20}
export XTP_SOAK_WARMUP=${XTP_SOAK_WARMUP:-30}
export XTP_SOAK_WINDOW=${XTP_SOAK_WINDOW:-20}
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
