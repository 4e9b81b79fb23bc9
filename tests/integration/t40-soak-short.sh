#!/bin/bash
# t40-soak-short: the 3-minute variant of the soak (`make soak` runs the 30-minute one), against
# the build ctest uses (the ASan+UBSan one in `make test`). Two runs of scripts/soak.sh:
#  1. The checker's self-test (about 25 s): 20 sessions log in to jabberd2 through
#     tests/soak/fault-relay.py, which drops, duplicates, reorders and corrupts messages on
#     purpose; xtp-soak must count exactly those faults, each at least once. So the soak
#     below cannot pass because its checker went blind.
#  2. The soak: jabberd2 behind the proxy ($XTP_BIN); tests/soak/xtp-soak; no lost,
#     duplicated, reordered, corrupted or misrouted message, no failed session, the proxy's
#     descriptors back at their baseline and its session gauge at 0 after the run, its RSS
#     within the tolerance between a window after warm-up and the last window before the
#     teardown, a clean SIGTERM exit and no sanitizer report.
#
# Sizes of the soak, for ASan+UBSan on 2 shared vCPUs within 3.5 minutes of wall time with the
# self-test (measured: 184 s in all; the soak's client runs 150 s, the self-test 26 s, the
# rest is jabberd2's start and stop, the 2,500 accounts and the proxy's settling):
#   - 2,000 sessions, as in the long soak. 2,000 is not too slow under ASan: the ramp (50
#     logins/s) takes 42-53 s and the whole run costs about 0.4 of a core on average (the
#     proxy's RSS is about 700 MB). The RSS windows still fit if the ramp takes 80 s.
#   - Churn 20 logins/s at most (pair lifetimes 12-237 s, mean 125 s), twice the long soak's,
#     so that about 3,200 logins go through the proxy in the run, with every leaving kind
#     (graceful, FIN, RST), both listeners, TLS 1.2 and 1.3, full and resumed handshakes.
#   - 0.5 messages per second and session: about 1,000 messages/s, some 100,000 in a run.
#   - jabberd2 refuses about 2% of the logins at this churn (its descriptor reuse: see
#     tests/soak/README.md); how many depends on how slow its sm is, so the bound is 10%
#     here instead of the client's 5%. A proxy that broke logins would exceed it by far.
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

export XTP_SOAK_CLIENT=$CLIENT XTP_BIN
start=$SECONDS

rc=0
env XTP_SOAK_FAULTS=1 XTP_SOAK_DURATION=15 XTP_SOAK_SESSIONS=20 XTP_SOAK_RATE=4 \
    XTP_SOAK_CHURN=4 XTP_SOAK_RAMP=20 XTP_SOAK_ARGS="--status 5" TMPDIR="$T" \
    bash "$XTP_SRC/scripts/soak.sh" "$XTP_BUILD" >"$T/faults.out" 2>&1 || rc=$?
grep -E '^soak: |FAIL' "$T/faults.out" || true
[ "$rc" = 0 ] || fail "the checker's self-test failed (exit $rc): xtp-soak does not see injected faults"
log "the checker saw every injected fault ($((SECONDS - start)) s)"

export XTP_SOAK_DURATION=${XTP_SOAK_DURATION:-150}
export XTP_SOAK_SESSIONS=${XTP_SOAK_SESSIONS:-2000}
export XTP_SOAK_RATE=${XTP_SOAK_RATE:-0.5}
export XTP_SOAK_RAMP=${XTP_SOAK_RAMP:-50}
export XTP_SOAK_CHURN=${XTP_SOAK_CHURN:-20}
export XTP_SOAK_WARMUP=${XTP_SOAK_WARMUP:-30}
export XTP_SOAK_WINDOW=${XTP_SOAK_WINDOW:-20}
export XTP_SOAK_ARGS=${XTP_SOAK_ARGS:---status 20 --max-refused 10}

rc=0
TMPDIR=$T bash "$XTP_SRC/scripts/soak.sh" "$XTP_BUILD" >"$T/soak.out" 2>&1 || rc=$?
cat "$T/soak.out"
log "soak.sh exited with $rc; $((SECONDS - start)) s in all"
case "$rc" in
0) pass ;;
1) fail "the soak found a violation (see the FAIL lines above)" ;;
*) fail "the soak could not run (exit $rc)" ;;
esac
