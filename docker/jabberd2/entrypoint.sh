#!/bin/bash
# entrypoint.sh: jabberd2 2.7 from Debian as the plaintext backend of xmpp-tls-proxy, in one
# container (docker/compose.yaml). It does on start what docs/operator-guide.md asks of any
# jabberd2 behind the proxy:
#   - every listener on 127.0.0.1 (c2s 15222, s2s 15269, router 5347): only the proxy, which
#     shares this network namespace, reaches them (JABBERD2_IP moves c2s and s2s elsewhere)
#   - no TLS of its own (no pemfile, no ssl-port): the proxy does TLS
#   - s2s: <out-conn-reuse/> removed (one outbound stream per remote domain), and
#     <origins><ip>0.0.0.0</ip></origins> so that outbound connections leave from a routable
#     address; the iptables REDIRECT (docker/init-iptables.sh) then takes them to the proxy.
#     With the default (the <local><ip>, 127.0.0.1) connect() fails with EINVAL.
#   - c2s: no per-address connection throttling (every client arrives from 127.0.0.1)
#
#   entrypoint.sh                 patch the configuration, create the database on first start,
#                                 run router, sm, s2s and c2s until one of them exits or SIGTERM
#   entrypoint.sh health          exit 0 when c2s answers a stream header with stream features
#   entrypoint.sh adduser USER PASSWORD
#                                 add an account (run it with `docker compose exec`)
#
# Environment: XMPP_DOMAIN (required), JABBERD2_USERS ("user:password ...", created with a new
# database only), JABBERD2_IP (the c2s and s2s listeners' address, 127.0.0.1; 0.0.0.0 when
# proxies in other pods or hosts connect: docs/scaling.md), JABBERD2_C2S_PORT (15222),
# JABBERD2_S2S_PORT (15269), JABBERD2_ROUTER_PORT
# (5347), JABBERD2_ETC (the package's files, /etc/jabberd2), JABBERD2_DATA (database and
# generated configuration, /var/lib/jabberd2), JABBERD2_SBIN (/usr/sbin). Logs go to stdout,
# each line prefixed with the component's name.
set -euo pipefail

DOMAIN=${XMPP_DOMAIN:-}
LISTEN_IP=${JABBERD2_IP:-127.0.0.1}
C2S_PORT=${JABBERD2_C2S_PORT:-15222}
S2S_PORT=${JABBERD2_S2S_PORT:-15269}
ROUTER_PORT=${JABBERD2_ROUTER_PORT:-5347}
ETC=${JABBERD2_ETC:-/etc/jabberd2}
DATA=${JABBERD2_DATA:-/var/lib/jabberd2}
SBIN=${JABBERD2_SBIN:-/usr/sbin}
DB=$DATA/jabberd2.db
CONF=$DATA/etc
LOGS=${TMPDIR:-/tmp}/jabberd2-logs
DB_SETUP=/usr/share/doc/jabberd2/db-setup.sqlite.gz
PIDS=()

say() { printf 'entrypoint: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

check_domain() {
    case "$LISTEN_IP" in
    *[!0-9.]* | '') die "JABBERD2_IP '$LISTEN_IP' is not an IPv4 address" ;;
    esac
    case "$DOMAIN" in
    '') die "XMPP_DOMAIN is not set" ;;
    *[!a-zA-Z0-9.-]*) die "XMPP_DOMAIN '$DOMAIN' is not a domain name" ;;
    esac
}

# probe_features PORT: c2s answers a stream header with <stream:features> within 3 s.
probe_features() {
    # shellcheck disable=SC2016 # the inner script's own variables
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "%s" "<?xml version=\"1.0\"?><stream:stream xmlns=\"jabber:client\" xmlns:stream=\"http://etherx.jabber.org/streams\" to=\"$2\" version=\"1.0\">" >&3
        while IFS= read -r -d ">" -u 3 part; do
            case "$part" in *"<stream:features"*) printf "</stream:stream>" >&3; exit 0 ;; esac
        done
        exit 1' _ "$1" "$DOMAIN" 2>/dev/null
}

add_user() { # add_user USER PASSWORD
    local user=$1 pass=$2
    case "$user$pass" in
    *"'"* | *[[:space:]]*) die "no quotes or spaces in user names and passwords: $user" ;;
    esac
    # Both rows are needed: authreg for the password, active or sm never starts a session.
    sqlite3 "$DB" "INSERT INTO authreg(username, realm, password) VALUES('$user', '$DOMAIN', '$pass');
        INSERT INTO active(\"collection-owner\", \"time\") VALUES('$user@$DOMAIN', strftime('%s','now'));"
    say "added $user@$DOMAIN"
}

patch_configs() {
    python3 - "$ETC" "$CONF" "$DOMAIN" "$C2S_PORT" "$S2S_PORT" "$ROUTER_PORT" "$DB" "$LOGS" \
        "$LISTEN_IP" <<'EOF'
import os
import secrets
import sys
import xml.etree.ElementTree as ET

etc, conf, domain, c2s_port, s2s_port, router_port, db, logs, listen_ip = sys.argv[1:10]

def need(root, path):
    el = root.find(path)
    if el is None:
        sys.exit(f"entrypoint: <{path}> missing in {root.tag}.xml")
    return el

def drop(parent, *tags):
    for tag in tags:
        for el in parent.findall(tag):
            parent.remove(el)

def common(name):
    tree = ET.parse(f"{etc}/{name}.xml")
    root = tree.getroot()
    need(root, "pidfile").text = f"{logs}/{name}.pid"
    log = need(root, "log")
    log.attrib.clear()
    log.set("type", "stdout")
    router = root.find("router")
    if router is not None:
        need(router, "ip").text = "127.0.0.1"
        need(router, "port").text = router_port
        drop(router, "pemfile")
    return tree, root

def save(tree, name):
    tree.write(f"{conf}/{name}.xml", encoding="utf-8")

tree, r = common("router")
local = need(r, "local")
need(local, "ip").text = "127.0.0.1"   # Debian's default is 0.0.0.0, with the secret "secret"
need(local, "port").text = router_port
need(local, "users").text = f"{conf}/router-users.xml"
drop(local, "pemfile")
need(r, "aci/filter").text = f"{conf}/router-filter.xml"
save(tree, "router")

tree, r = common("sm")
local = need(r, "local")
drop(local, "id")
ET.SubElement(local, "id").text = domain
need(r, "storage/sqlite/dbname").text = db
for jid in r.iter("jid"):
    jid.text = f"admin@{domain}"
save(tree, "sm")

tree, r = common("c2s")
local = need(r, "local")
drop(local, "id", "ssl-port", "pemfile", "verify-mode", "cachain", "ciphers")
cid = ET.Element("id")
cid.text = domain
local.insert(0, cid)
need(local, "ip").text = listen_ip
need(local, "port").text = c2s_port
need(r, "authreg/sqlite/dbname").text = db
need(r, "io/limits/connects").text = "0"
save(tree, "c2s")

tree, r = common("s2s")
local = need(r, "local")
need(local, "ip").text = listen_ip
need(local, "port").text = s2s_port
drop(local, "pemfile", "verify-mode", "cachain", "ciphers", "origins")
origins = ET.SubElement(local, "origins")
ET.SubElement(origins, "ip").text = "0.0.0.0"
secret = local.find("secret")
if secret is None:
    secret = ET.SubElement(local, "secret")
secret.text = secrets.token_hex(16)
drop(r, "out-conn-reuse")
security = r.find("security")
if security is not None:
    drop(security, "require_tls")
save(tree, "s2s")
EOF
    cp "$ETC/router-users.xml" "$ETC/router-filter.xml" "$CONF/"
}

# start NAME: jabberd2-NAME in the background, its output prefixed on stdout and kept in
# $LOGS/NAME.log for the readiness checks.
start() {
    local name=$1
    "$SBIN/jabberd2-$name" -c "$CONF/$name.xml" </dev/null \
        > >(tee "$LOGS/$name.log" | sed -u "s/^/$name: /") 2>&1 &
    PIDS+=("$!")
}

# wait_for SECONDS CMD...: until CMD succeeds, as long as every component is alive.
wait_for() {
    local secs=$1 i pid
    shift
    for ((i = 0; i < secs * 10; i++)); do
        "$@" && return 0
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || return 1
        done
        sleep 0.1
    done
    return 1
}

stop_all() {
    local i pid
    trap - TERM INT
    # c2s first, the router last.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
router_online() { grep -q "\[$1\] online" "$LOGS/router.log" 2>/dev/null; }

run() {
    local u
    check_domain
    command -v sqlite3 >/dev/null || die "sqlite3 not found"
    mkdir -p "$CONF" "$LOGS"
    patch_configs
    if [ ! -s "$DB" ]; then
        [ -r "$DB_SETUP" ] || die "$DB_SETUP not found"
        zcat "$DB_SETUP" | sqlite3 "$DB" >/dev/null
        for u in ${JABBERD2_USERS:-}; do
            case "$u" in
            *:*) add_user "${u%%:*}" "${u#*:}" ;;
            *) die "JABBERD2_USERS entry without a password: $u" ;;
            esac
        done
        say "created $DB"
    fi

    trap 'say "stopping"; stop_all; exit 0' TERM INT
    start router
    wait_for 10 port_open "$ROUTER_PORT" || { stop_all; die "the router did not listen on 127.0.0.1:$ROUTER_PORT"; }
    # sm before c2s: both open the database at start, and jabberd2 runs its start-up SQL before
    # it sets the busy timeout ("database is locked" otherwise).
    start sm
    wait_for 15 router_online "$DOMAIN" || { stop_all; die "sm did not bind $DOMAIN at the router"; }
    start s2s
    wait_for 15 router_online s2s || { stop_all; die "s2s did not come online"; }
    start c2s
    wait_for 15 probe_features "$C2S_PORT" || { stop_all; die "c2s did not answer on 127.0.0.1:$C2S_PORT"; }
    say "jabberd2 for $DOMAIN ready: c2s $LISTEN_IP:$C2S_PORT, s2s $LISTEN_IP:$S2S_PORT"

    # Run until a component exits (then stop the rest and fail, so the container restarts)
    # or SIGTERM arrives (the trap).
    wait -n "${PIDS[@]}" || true
    say "a jabberd2 component exited; stopping the others"
    stop_all
    exit 1
}

case "${1:-run}" in
run) run ;;
health)
    check_domain
    probe_features "$C2S_PORT"
    ;;
adduser)
    [ $# -eq 3 ] || die "usage: entrypoint.sh adduser USER PASSWORD"
    check_domain
    [ -s "$DB" ] || die "no database at $DB yet: start the container first"
    add_user "$2" "$3"
    ;;
*) die "usage: entrypoint.sh [run | health | adduser USER PASSWORD]" ;;
esac
