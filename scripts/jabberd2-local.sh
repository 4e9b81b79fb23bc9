#!/bin/bash
# jabberd2-local.sh: run a private jabberd2 2.7 (router, sm, c2s, optionally s2s) from the Debian
# package, without systemd and without touching /etc or /var. Used by the integration tests and
# by scripts/demo.sh; see design.md §5 "Running jabberd2 without systemd".
#
#   jabberd2-local.sh start DIR DOMAIN C2S_PORT [S2S_PORT]
#   jabberd2-local.sh stop DIR
#
# start: copies /etc/jabberd2/{router,sm,c2s,s2s}.xml, router-users.xml and router-filter.xml
# into DIR and patches them: pidfiles and logs in DIR (<log type='stdout'>, each process's output
# goes to DIR/<name>.log), every address 127.0.0.1, the router on a free port, c2s on C2S_PORT,
# s2s on S2S_PORT (s2s is not started without it), <id> = DOMAIN, sqlite database DIR/jabberd2.db,
# no TLS of jabberd2's own (the proxy does TLS), <out-conn-reuse/> off. Creates the database with
# the users alice/secret and bob/secret (override with JABBERD2_USERS="user:password ..."),
# refuses busy ports, starts router, sm (until it has bound DOMAIN), s2s, c2s in the background (their pids go to DIR/pids)
# and returns once c2s answers a stream header with <stream:features> and sm has bound DOMAIN
# (15 s at most). On success it prints one line: where the logs are. On failure it stops what it
# started, prints the logs' tails and exits 1.
#
# c2s writes "[FD] [IP, port=N] connect" for every accepted connection (LOG_NOTICE,
# unconditional in jabberd2 2.7: there is no option to switch it on or off); the tests rely on
# these lines in DIR/c2s.log to prove which connections reached jabberd2.
#
# s2s (only with S2S_PORT): listens on 127.0.0.1:S2S_PORT, connects out from 127.0.0.1, one
# outbound stream per remote domain (<out-conn-reuse/> removed), dialback secret in <local><secret>
# (also written to DIR/s2s-secret), no TLS. It is ready when it listens (checked with ss, so no
# probe connection shows in s2s.log) and the router has made it the default route. Its outbound
# resolver is udns (libudns0 0.4), which reads NAMESERVERS and RES_OPTIONS from the environment
# (verified: docs/testing-s2s.md); s2s always runs with NAMESERVERS set, so it never asks the
# system's resolver:
#   JABBERD2_S2S_DNS=IP[:PORT]   the DNS server s2s asks (default 127.0.0.1, port 53): s2s runs
#                                with NAMESERVERS=IP RES_OPTIONS=port:PORT, and without an
#                                inherited NSCACHEIP (udns would prefer it) or LOCALDOMAIN
#   JABBERD2_S2S_SECRET=S        dialback secret (default: 32 random hex digits)
#   JABBERD2_S2S_SET="PATH=VALUE PATH !PATH ..."
#                                extra edits of s2s.xml, PATH relative to <s2s> (ElementTree
#                                syntax): PATH=VALUE sets the text (creating the element),
#                                PATH alone creates an empty flag element, !PATH removes it.
#                                Example: "check/interval=1 lookup/bad-host-timeout=0 lookup/no-cache"
# s2s writes "[FD] [IP, port=N] incoming connection" for every accepted connection and
# "[FD] [IP, port=N] outgoing connection for 'DOMAIN'" for every connection it opens.
#
# stop: SIGTERM to every recorded process that is still the jabberd2 we started, SIGKILL after
# 3 s, and waits until they are gone. Stopping an already stopped DIR is not an error.
#
# Environment: JABBERD2_ETC (default /etc/jabberd2), JABBERD2_SBIN (default /usr/sbin),
# JABBERD2_DB_SETUP (default /usr/share/doc/jabberd2/db-setup.sqlite.gz), PYTHON (default
# /usr/bin/python3 when present), and the JABBERD2_S2S_* variables above.
set -euo pipefail

ETC=${JABBERD2_ETC:-/etc/jabberd2}
SBIN=${JABBERD2_SBIN:-/usr/sbin}
DB_SETUP=${JABBERD2_DB_SETUP:-/usr/share/doc/jabberd2/db-setup.sqlite.gz}
USERS=${JABBERD2_USERS:-alice:secret bob:secret}
if [ -z "${PYTHON:-}" ]; then
    if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
READY_TIMEOUT=15
S2S_DNS=${JABBERD2_S2S_DNS:-127.0.0.1}
S2S_SECRET=${JABBERD2_S2S_SECRET:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
S2S_SET=${JABBERD2_S2S_SET:-}

die() {
    printf 'jabberd2-local: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: jabberd2-local.sh start DIR DOMAIN C2S_PORT [S2S_PORT]
       jabberd2-local.sh stop DIR
EOF
    exit 2
}

# port_busy PORT: true when something listens on (or holds) 127.0.0.1:PORT.
port_busy() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
EOF
}

# free_port: a port the kernel just handed out for 127.0.0.1 (free now; racy by nature, so the
# caller checks again that its own process ends up listening there).
free_port() {
    "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# is_ours PID DIR: PID is alive and is a jabberd2 process started with a config in DIR.
is_ours() {
    local cmd
    [ -r "/proc/$1/cmdline" ] || return 1
    cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
    case "$cmd" in
    *jabberd2-*" -c $2/"*) return 0 ;;
    esac
    return 1
}

# alive PID: PID exists and is not a zombie. Unlike is_ours it holds from the fork on, before
# the child has exec'd jabberd2 (is_ours would fail in that window and end a wait early).
alive() {
    kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}

do_stop() {
    local dir=$1 name pid live i
    local -a pids=()
    [ -f "$dir/pids" ] || return 0
    # Reverse start order: c2s first, the router last.
    while read -r name pid; do
        if is_ours "$pid" "$dir"; then pids=("$pid" "${pids[@]}"); fi
    done <"$dir/pids"
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 30; i++)); do # 3 s
        live=0
        for pid in "${pids[@]}"; do
            if is_ours "$pid" "$dir" && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
                live=1
            fi
        done
        [ "$live" = 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if is_ours "$pid" "$dir"; then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    for ((i = 0; i < 50; i++)); do # SIGKILL is prompt; 5 s for the kernel to reap
        live=0
        for pid in "${pids[@]}"; do
            if [ -d "/proc/$pid" ] && is_ours "$pid" "$dir" &&
                ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
                live=1
            fi
        done
        [ "$live" = 0 ] && break
        sleep 0.1
    done
    [ "$live" = 0 ] || die "processes in $dir survived SIGKILL: ${pids[*]}"
    rm -f "$dir/pids"
}

# patch_configs DIR DOMAIN C2S_PORT S2S_PORT ROUTER_PORT: rewrite the copied XML files in place.
patch_configs() {
    "$PYTHON" - "$@" <<'EOF'
import os
import sys
import xml.etree.ElementTree as ET

d, domain, c2s_port, s2s_port, router_port = sys.argv[1:6]

def load(name):
    return ET.parse(f"{d}/{name}.xml")

def need(root, path):
    el = root.find(path)
    if el is None:
        sys.exit(f"jabberd2-local: {path} missing in {root.tag}.xml")
    return el

def common(tree, name):
    root = tree.getroot()
    need(root, "pidfile").text = f"{d}/{name}.pid"
    log = need(root, "log")
    log.attrib.clear()
    log.set("type", "stdout")
    for pem in root.iter("pemfile"):
        pem.text = ""  # jabberd2 never does TLS here: the proxy does
    router = root.find("router")
    if router is not None:
        need(router, "ip").text = "127.0.0.1"
        need(router, "port").text = router_port
        for pem in router.findall("pemfile"):
            router.remove(pem)
    return root

def save(tree, name):
    tree.write(f"{d}/{name}.xml", encoding="utf-8", xml_declaration=False)

t = load("router")
r = common(t, "router")
local = need(r, "local")
need(local, "ip").text = "127.0.0.1"
need(local, "port").text = router_port
need(local, "users").text = f"{d}/router-users.xml"
for pem in local.findall("pemfile"):
    local.remove(pem)
need(r, "aci/filter").text = f"{d}/router-filter.xml"
save(t, "router")

t = load("sm")
r = common(t, "sm")
local = need(r, "local")
for i in local.findall("id"):
    local.remove(i)
ET.SubElement(local, "id").text = domain
need(r, "storage/sqlite/dbname").text = f"{d}/jabberd2.db"
for jid in r.iter("jid"):
    jid.text = f"admin@{domain}"
save(t, "sm")

t = load("c2s")
r = common(t, "c2s")
local = need(r, "local")
for i in local.findall("id"):
    local.remove(i)
cid = ET.Element("id")
cid.text = domain
local.insert(0, cid)
need(local, "ip").text = "127.0.0.1"
need(local, "port").text = c2s_port
for tag in ("ssl-port", "pemfile", "verify-mode", "cachain", "ciphers"):
    for el in local.findall(tag):
        local.remove(el)
need(r, "authreg/sqlite/dbname").text = f"{d}/jabberd2.db"
# Behind the proxy every connection comes from 127.0.0.1: no per-IP connect throttling.
need(r, "io/limits/connects").text = "0"
save(t, "c2s")

if s2s_port:
    t = load("s2s")
    r = common(t, "s2s")
    local = need(r, "local")
    need(local, "ip").text = "127.0.0.1"
    need(local, "port").text = s2s_port
    for tag in ("pemfile", "verify-mode", "cachain", "ciphers"):
        for el in local.findall(tag):
            local.remove(el)
    # Each remote domain gets its own outbound stream (design.md §5).
    for el in r.findall("out-conn-reuse"):
        r.remove(el)
    secret = local.find("secret")
    if secret is None:
        secret = ET.SubElement(local, "secret")
    secret.text = os.environ["S2S_SECRET"]
    for edit in os.environ.get("S2S_SET", "").split():
        remove = edit.startswith("!")
        path, eq, value = edit.lstrip("!").partition("=")
        if not path or path.startswith("/") or (remove and eq):
            sys.exit(f"jabberd2-local: bad JABBERD2_S2S_SET entry: {edit}")
        parent_path, _, tag = path.rpartition("/")
        parent = r if not parent_path else r.find(parent_path)
        if parent is None:
            # Create the missing ancestors, one level at a time.
            parent = r
            for part in parent_path.split("/"):
                child = parent.find(part)
                parent = child if child is not None else ET.SubElement(parent, part)
        if remove:
            for el in parent.findall(tag):
                parent.remove(el)
            continue
        el = parent.find(tag)
        if el is None:
            el = ET.SubElement(parent, tag)
        el.text = value if eq else None
    save(t, "s2s")
EOF
}

# wait_listen PORT SECONDS PID: until PORT accepts connections; fails early if PID died.
wait_listen() {
    local port=$1 secs=$2 pid=$3 i
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || return 1
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
        sleep 0.1
    done
    return 1
}

# wait_s2s DIR PORT SECONDS PID: until s2s listens on PORT (asked of the kernel with ss, so
# that no probe connection shows in s2s.log) and the router has made it the default route;
# fails early if PID (s2s) died.
wait_s2s() {
    local dir=$1 port=$2 secs=$3 pid=$4 i
    for ((i = 0; i < secs * 10; i++)); do
        if [ -n "$(ss -Hltn "src 127.0.0.1 and sport = :$port" 2>/dev/null)" ] &&
            grep -q '\[s2s\] online' "$dir/router.log" 2>/dev/null; then
            return 0
        fi
        alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# probe_c2s PORT DOMAIN SECONDS PID: true once c2s answers our stream header with
# <stream:features>; false after SECONDS or as soon as PID (c2s) has died.
probe_c2s() {
    "$PYTHON" - "$@" <<'EOF'
import socket, sys, time
port, domain, secs, pid = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]

def alive():
    try:
        with open(f"/proc/{pid}/status") as f:
            return not any(l.startswith("State:") and "Z" in l.split()[1] for l in f)
    except OSError:
        return False

hdr = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
       "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % domain)
deadline = time.monotonic() + secs
while time.monotonic() < deadline and alive():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(hdr.encode())
            buf = b""
            while b"</stream:features>" not in buf and time.monotonic() < deadline:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            if b"<stream:features" in buf:
                s.sendall(b"</stream:stream>")
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit(1)
EOF
}

# start_one DIR NAME: starts jabberd2-NAME in the background and records its pid. s2s gets the
# resolver environment (NAMESERVERS, RES_OPTIONS; see the header).
start_one() {
    local dir=$1 name=$2 pid
    local -a envs=()
    if [ "$name" = s2s ]; then
        # udns reads NSCACHEIP before NAMESERVERS: drop an inherited one; RES_OPTIONS is set
        # whole so that no inherited option survives either.
        envs=(-u NSCACHEIP -u LOCALDOMAIN "NAMESERVERS=$S2S_DNS_IP" "RES_OPTIONS=port:${S2S_DNS_PORT:-53}")
    fi
    env "${envs[@]}" "$SBIN/jabberd2-$name" -c "$dir/$name.xml" </dev/null >>"$dir/$name.log" 2>&1 &
    pid=$!
    printf '%s %s\n' "$name" "$pid" >>"$dir/pids"
    echo "$pid"
}

# fail_start DIR MSG: stops what was started (first, so that a closed stderr cannot prevent
# it), then reports MSG and the logs' tails.
fail_start() {
    local dir=$1 f
    shift
    do_stop "$dir" || true
    printf 'jabberd2-local: %s\n' "$*" >&2
    for f in "$dir"/router.log "$dir"/sm.log "$dir"/s2s.log "$dir"/c2s.log; do
        [ -f "$f" ] || continue
        printf -- '--- %s (last 20 lines)\n' "$f" >&2
        grep -Ev "added to chain|PRAGMA|-- ANALYZE|^[[:space:]]*$" "$f" | tail -n 20 >&2
    done
    exit 1
}

do_start() {
    local dir=$1 domain=$2 c2s_port=$3 s2s_port=${4:-} router_port p pid i name u
    local -a ports
    command -v sqlite3 >/dev/null || die "sqlite3 not found (apt-get install sqlite3)"
    [ -x "$SBIN/jabberd2-router" ] || die "$SBIN/jabberd2-router not found (apt-get install jabberd2)"
    [ -r "$DB_SETUP" ] || die "$DB_SETUP not found"
    case "$domain" in
    *[!a-zA-Z0-9.-]* | "") die "bad domain: $domain" ;;
    esac
    for p in "$c2s_port" $s2s_port; do
        case "$p" in
        *[!0-9]* | "") die "bad port: $p" ;;
        esac
    done
    S2S_DNS_IP=${S2S_DNS%%:*} S2S_DNS_PORT=
    case "$S2S_DNS" in *:*) S2S_DNS_PORT=${S2S_DNS#*:} ;; esac
    case "$S2S_DNS_IP" in
    *[!0-9.]* | "") die "bad JABBERD2_S2S_DNS (IPv4[:PORT]): $S2S_DNS" ;;
    esac
    case "$S2S_DNS_PORT" in
    *[!0-9]*) die "bad JABBERD2_S2S_DNS port: $S2S_DNS" ;;
    esac
    case "$S2S_SECRET" in
    *[!a-zA-Z0-9]* | "") die "JABBERD2_S2S_SECRET must be letters and digits" ;;
    esac

    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/pids" ]; then
        while read -r name pid; do
            if is_ours "$pid" "$dir"; then die "jabberd2 already running in $dir (pid $pid): stop it first"; fi
        done <"$dir/pids"
        rm -f "$dir/pids"
    fi

    router_port=$(free_port)
    ports=("$c2s_port" "$router_port")
    [ -n "$s2s_port" ] && ports+=("$s2s_port")
    for p in "${ports[@]}"; do
        if port_busy "$p"; then die "port 127.0.0.1:$p is busy (jabberd2 would only log the failed bind)"; fi
    done

    for f in router sm c2s s2s; do cp "$ETC/$f.xml" "$dir/$f.xml"; done
    cp "$ETC/router-users.xml" "$ETC/router-filter.xml" "$dir/"
    rm -f "$dir"/{router,sm,c2s,s2s}.log "$dir"/*.pid
    S2S_SECRET=$S2S_SECRET S2S_SET=$S2S_SET \
        patch_configs "$dir" "$domain" "$c2s_port" "$s2s_port" "$router_port"
    if [ -n "$s2s_port" ]; then
        printf '%s\n' "$S2S_SECRET" >"$dir/s2s-secret"
    else
        rm -f "$dir/s2s.xml" "$dir/s2s-secret"
    fi

    rm -f "$dir/jabberd2.db"
    zcat "$DB_SETUP" | sqlite3 "$dir/jabberd2.db" >/dev/null
    for u in $USERS; do
        case "$u" in
        *:*) ;;
        *) die "JABBERD2_USERS entry without a password: $u" ;;
        esac
        local user=${u%%:*} pass=${u#*:}
        case "$user$pass" in
        *"'"*) die "quote in JABBERD2_USERS entry: $u" ;;
        esac
        # Both rows are needed: authreg for the password, active or the sm never starts a session.
        sqlite3 "$dir/jabberd2.db" \
            "INSERT INTO authreg(username, realm, password) VALUES('$user', '$domain', '$pass');
             INSERT INTO active(\"collection-owner\", \"time\") VALUES('$user@$domain', strftime('%s','now'));"
    done

    pid=$(start_one "$dir" router)
    wait_listen "$router_port" 10 "$pid" || fail_start "$dir" "router did not listen on 127.0.0.1:$router_port"
    # sm first, and c2s only once sm has bound the domain: both open the sqlite database at
    # start, and jabberd2 runs its start-up SQL before it sets the busy timeout, so opening
    # them together can fail with "database is locked" (seen in CI).
    pid=$(start_one "$dir" sm)
    for ((i = 0; i < READY_TIMEOUT * 10; i++)); do
        grep -q "\[$domain\] online" "$dir/router.log" 2>/dev/null && break
        alive "$pid" || break
        sleep 0.1
    done
    grep -q "\[$domain\] online" "$dir/router.log" ||
        fail_start "$dir" "sm did not bind $domain at the router within ${READY_TIMEOUT}s"
    if [ -n "$s2s_port" ]; then
        pid=$(start_one "$dir" s2s)
    fi
    pid=$(start_one "$dir" c2s)
    if [ -n "$s2s_port" ]; then
        wait_s2s "$dir" "$s2s_port" "$READY_TIMEOUT" "$(awk '$1=="s2s"{print $2}' "$dir/pids")" ||
            fail_start "$dir" "s2s did not listen on 127.0.0.1:$s2s_port or did not become the router's default route within ${READY_TIMEOUT}s"
    fi
    probe_c2s "$c2s_port" "$domain" "$READY_TIMEOUT" "$pid" ||
        fail_start "$dir" "c2s exited or did not answer with <stream:features> on 127.0.0.1:$c2s_port within ${READY_TIMEOUT}s"
    while read -r name pid; do
        is_ours "$pid" "$dir" || fail_start "$dir" "jabberd2-$name (pid $pid) exited"
    done <"$dir/pids"
    echo "jabberd2 logs: $dir/{router,sm,c2s${s2s_port:+,s2s}}.log"
}

[ $# -ge 1 ] || usage
case "$1" in
start)
    [ $# -eq 4 ] || [ $# -eq 5 ] || usage
    do_start "$2" "$3" "$4" "${5:-}"
    ;;
stop)
    [ $# -eq 2 ] || usage
    [ -d "$2" ] || exit 0
    do_stop "$(cd "$2" && pwd)"
    ;;
*) usage ;;
esac
