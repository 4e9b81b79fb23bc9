#!/bin/bash
# t37-fault-remote-reset: c2s peers that vanish in the middle of the TLS handshake, over
# STARTTLS and Direct TLS, at every point (tlshangup.py): right after <proceed/> (or the
# connect), after half a ClientHello, after a whole one, after the ServerHello arrived; each by
# RST (a crashed client, a dropped network) and by FIN (a client that gave up). Each is exactly
# one close line, reason=peer-io-error (RST) or peer-eof / peer-io-error (FIN), never
# tls-error: a peer that leaves is not a TLS failure, and must not feed the TLS-failure count
# (xtp_tls_handshake_failures_total{reason="protocol"}) operators alert on: 14 of the 16 land in
# reason="peer-closed"; the two Direct TLS clients that leave right after the connect, before
# a byte, started no handshake at all (the proxy makes the TLS session at the first byte) and
# are not counted. (t26 covers Direct TLS
# resets after the ServerHello; the s2s-out side, a remote that resets mid-handshake, is
# t44-s2s-out-remote-reset.sh.) Then 40 such hang-ups at once. A guard session logged in
# on jabberd2 keeps answering throughout, and jabberd2 never sees any of these connections.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=faults.sh
. "$LIB_DIR/faults.sh"

need_cmd curl
start_jabberd2 "$DOMAIN"
ADMIN_PORT=$(free_port)
LOG_LEVEL=info write_proxy_config "$T/proxy.yaml"
printf 'admin: { listen: "127.0.0.1:%s" }\n' "$ADMIN_PORT" >>"$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
wait_port "$ADMIN_PORT" 5 || fail "the admin listener does not listen"

rm -f "$T/guard.ready" "$T/guard.stop"
bg "$PY" "$LIB_DIR/guard.py" --mode starttls --port "$PROXY_STARTTLS_PORT" --ca "$CA" \
    --domain "$DOMAIN" --ready "$T/guard.ready" --stop "$T/guard.stop" --max-latency 5 \
    --interval 0.2 >"$T/guard.out" 2>&1
GUARD=$BG_PID
wait_until 15 test -e "$T/guard.ready" || {
    cat "$T/guard.out"
    fail "the guard session did not log in"
}
jabberd2_mark

# hangup MODE AT HOW: one client leaving; fails the test if it could not get that far.
hangup() {
    local args=(--port "$PROXY_DIRECT_PORT")
    [ "$1" = starttls ] && args=(--port "$PROXY_STARTTLS_PORT" --starttls)
    "$PY" "$LIB_DIR/tlshangup.py" "${args[@]}" --domain "$DOMAIN" --at "$2" --how "$3"
}
tls_failures() { # tls_failures REASON: xtp_tls_handshake_failures_total{reason=REASON}
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v r="reason=\"$1\"" 'index($0, "xtp_tls_handshake_failures_total{") == 1 && index($0, r) { s += $NF } END { print s + 0 }'
}

# ---- 1. each point, each way, one at a time ----------------------------------------------------
protocol_before=$(tls_failures protocol)
closed_before=$(tls_failures peer-closed)
for mode in starttls direct; do
    for at in proceed half-hello hello server-hello; do
        for how in rst fin; do
            proxy_mark
            hangup "$mode" "$at" "$how" >"$T/hangup.out" 2>&1 || {
                cat "$T/hangup.out"
                fail "$mode $at $how: the client did not get that far, or the proxy kept it open"
            }
            lst=c2s-direct
            [ "$mode" = starttls ] && lst=c2s
            expect_sessions "$lst=1" || fail "$mode $at $how: session lines"
            want='peer-io-error'
            [ "$how" = fin ] && want='(peer-eof|peer-io-error)'
            close_line_has "listener=$lst .*close reason=$want " ||
                fail "$mode $at $how: the close line does not say the client left: $(close_lines)"
            log "$mode $at $how: $(close_lines | grep -o 'close reason=[^ ]*\( error=[A-Z]*\)\?') ($(cut -c12- "$T/hangup.out"))"
        done
    done
done
[ "$(tls_failures protocol)" = "$protocol_before" ] ||
    fail "the hang-ups were counted as TLS protocol failures: $protocol_before -> $(tls_failures protocol)"
[ "$(tls_failures peer-closed)" = $((closed_before + 14)) ] ||
    fail "xtp_tls_handshake_failures_total{reason=\"peer-closed\"} went $closed_before -> $(tls_failures peer-closed), expected +14"
proxy_alive || fail "the proxy died"

# ---- 2. 40 at once -----------------------------------------------------------------------------
proxy_mark
pids=()
for i in $(seq 1 5); do
    for mode in starttls direct; do
        for at in proceed half-hello hello server-hello; do
            how=rst
            [ $((i % 2)) = 0 ] && how=fin
            bg hangup "$mode" "$at" "$how" >"$T/burst-$i-$mode-$at.out" 2>&1
            pids+=("$BG_PID")
        done
    done
done
for p in "${pids[@]}"; do wait "$p" || fail "burst: a client could not hang up as planned"; done
expect_sessions c2s=20 c2s-direct=20 || fail "burst: session lines"
close_lines | grep -q 'reason=tls-error' && fail "burst: a hang-up was logged as tls-error: $(close_lines | grep tls-error | head -3)"
log "burst: 40 hang-ups at once: $(close_lines | grep -o 'close reason=[^ ]*' | sort | uniq -c | tr -s ' \n' ' ')"
proxy_alive || fail "the proxy died"

[ "$(jabberd2_connects)" = 0 ] || fail "jabberd2 saw $(jabberd2_connects) connections from the hang-ups"
touch "$T/guard.stop"
wait "$GUARD" || {
    cat "$T/guard.out"
    fail "the guard session next to the hang-ups broke"
}
log "guard: $(cat "$T/guard.out")"
pass
