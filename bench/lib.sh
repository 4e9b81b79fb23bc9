# shellcheck shell=bash
# bench/lib.sh: what the benchmark scripts share. Sourced by them, never run on its own.

# stop_pid PID [SECONDS]: SIGTERM, SIGKILL after SECONDS (default 5), then reaps it (a child of
# the calling shell). An empty or already finished PID is fine.
stop_pid() {
    local pid=$1 secs=${2:-5} i
    [ -n "$pid" ] || return 0
    if kill -TERM "$pid" 2>/dev/null; then
        for ((i = 0; i < secs * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
