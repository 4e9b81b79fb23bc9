#!/bin/bash
# t43-reload-live-gauge: /metrics xtp_sessions after a SIGHUP while sessions are live.
# (Fixed: a reload keeps the registry, or counts the live sessions into a new one.)
#
# Bug: reload() (main.c) replaces the metrics registry with a fresh one (counters restart,
# which main.c documents and Prometheus' rate() tolerates). But xtp_sessions is a gauge of
# live sessions: the new registry starts it at 0 although sessions are live, and each of them
# decrements it when it closes (metrics_session_close() adds -1 on c->w->metrics, which is now
# the new registry). After a reload under 4 sessions, /metrics says 0 live sessions; once they
# leave it says -4, and it stays off by 4 for the life of the process: a dashboard or an alert
# on xtp_sessions (capacity, drain progress) reads nonsense after every certificate renewal.
#
# Expected: xtp_sessions{listener=...} equals the sessions live on that listener before and
# after a reload, and returns to 0 when they are gone.
#
# Fix: carry the live gauges into the new registry (the listeners are identical, which
# listeners_differ() guarantees): a metrics_reg_carry_live(new, old) that copies, per
# listener, the summed off_live values of the old shards into shard 0 of the new one, called
# in reload() before metrics_reg_free(m->reg). The report has the diff.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

need_cmd curl
start_jabberd2 "$DOMAIN"
ADMIN_PORT=$(free_port)
LOG_LEVEL=info write_proxy_config "$T/proxy.yaml"
printf 'admin: { listen: "127.0.0.1:%s" }\n' "$ADMIN_PORT" >>"$T/proxy.yaml"
start_proxy "$T/proxy.yaml"
wait_port "$ADMIN_PORT" 5 || fail "the admin listener does not listen"

live() { # live LISTENER: the xtp_sessions sample for it
    curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" |
        awk -v l="listener=\"$1\"" 'index($0, "xtp_sessions{") == 1 && index($0, l) { print $NF }'
}

HDR=$(stream_header "$DOMAIN")
pids=()
for i in 1 2 3 4; do
    rm -f "$T/held$i.ready"
    bg raw --port "$PROXY_DIRECT_PORT" --timeout 8 --tls --send "$HDR" --wait '</stream:features>' \
        --ready "$T/held$i.ready" --sleep 3 --send '</stream:stream>' --expect-closed \
        >"$T/held$i.out" 2>&1
    pids+=("$BG_PID")
done
wait_until 10 test -e "$T/held1.ready" -a -e "$T/held2.ready" -a -e "$T/held3.ready" -a -e "$T/held4.ready" ||
    fail "the 4 sessions did not start"
[ "$(live c2s-direct)" = 4 ] || fail "before the reload: xtp_sessions{c2s-direct} = $(live c2s-direct), expected 4"

proxy_mark
kill -HUP "$PROXY_PID"
wait_proxy_log 'reloaded .*4 sessions keep their old configuration' || fail "no reloaded line"
after=$(live c2s-direct)
for p in "${pids[@]}"; do wait "$p" || fail "a held session did not end cleanly"; done
sleep 0.5
gone=$(live c2s-direct)
log "xtp_sessions{c2s-direct}: 4 before the reload, $after after it, $gone once the 4 left"
[ "$after" = 4 ] || fail "after the reload xtp_sessions{c2s-direct} = $after with 4 sessions live"
[ "$gone" = 0 ] || fail "once the 4 sessions left, xtp_sessions{c2s-direct} = $gone"
pass
