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

# result KEY FILE: the value of KEY in the RESULT line of FILE.
result() {
    sed -n 's/^RESULT .*/&/p' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | tail -n 1
}

# rss_kb PID...: the sum of their VmRSS.
rss_kb() {
    local pid sum=0
    for pid in "$@"; do
        sum=$((sum + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
    done
    echo "$sum"
}

# wait_port PORT: until the proxy ($PROXY_PID) itself listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$PROXY_PID" 2>/dev/null || return 1
        ss -Hltnp "sport = :$port" 2>/dev/null | grep -q "pid=$PROXY_PID," && return 0
        sleep 0.1
    done
    return 1
}
