#!/bin/bash
# t30-docker-files: what ships for deployment holds together, without a Docker engine.
#   1. docker/compose.yaml parses; every build context, Dockerfile, target and bind-mounted file
#      it names exists; every COPY (and bind-mount) source of both Dockerfiles exists; the ports,
#      uids and addresses that compose.yaml, docker/proxy.yaml, docker/jabberd2 and the images
#      must agree on do agree.
#   2. config/xmpp-tls-proxy.service has Type=notify and the hardening keys, passes
#      `systemd-analyze verify` without a word, and rates "OK" in `systemd-analyze security`.
#   3. docs/xmpp-tls-proxy.8 renders without groff warnings and covers the command line.
#   4. docker/init-iptables.sh, in a private network namespace: the backend's uid is redirected
#      to the s2s-out port (with SO_ORIGINAL_DST intact), another uid is not, a rerun does not
#      add rules, --remove removes them.
#   5. docker/build.sh build: the image's build steps (Release build, strip, smoke test of the
#      stripped binary, runtime library list) on this machine. Then that binary under strace
#      (handshakes, admin requests, reload, drain): every system call it makes is in the unit's
#      SystemCallFilter (@system-service without @privileged), every socket family in its
#      RestrictAddressFamilies.
#   6. The sidecar without Docker: jabberd2 started by docker/jabberd2/entrypoint.sh, the proxy
#      with docker/proxy.yaml (ports, paths and CA rewritten for the test), alice and bob over
#      STARTTLS and Direct TLS, JSON log lines, one open and one close per session; the
#      compose health check command against /healthz (the real one when this build serves
#      admin.listen, a stub answering 200 and 503 otherwise).
#   7. `make install DESTDIR=...` when the Makefile has that target: the four files in place.
#   8. The examples in the documentation: every YAML block of config.md, operator-guide.md and
#      scaling.md parses (Kubernetes manifests too); every proxy configuration among them passes
#      `xmpp-tls-proxy --check` with certificate and secret paths pointed at test files (once
#      this parser knows all its keys); scaling.md's HAProxy configuration passes `haproxy -c`.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

D=$XTP_SRC/docker
UNIT=$XTP_SRC/config/xmpp-tls-proxy.service
MAN=$XTP_SRC/docs/xmpp-tls-proxy.8
"$PY" -c 'import yaml' 2>/dev/null || skip "python3-yaml not installed (it parses compose.yaml)"

# ---- 1. compose.yaml, the Dockerfiles, and what they must agree on ---------------------------
"$PY" - "$XTP_SRC" >"$T/static.out" 2>&1 <<'EOF' || { cat "$T/static.out"; fail "docker/ files do not hold together (above)"; }
import os
import re
import sys
import yaml

src = sys.argv[1]
d = os.path.join(src, "docker")
bad = []

def need_file(path, what):
    if not os.path.exists(path):
        bad.append(f"{what}: {os.path.relpath(path, src)} does not exist")
        return False
    return True

def dockerfile(path):
    """(stages, args, copy sources, bind sources, final CMD) of a Dockerfile."""
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    stages, args, copies, binds, cmd = set(), {}, [], [], None
    for line in text.split("\n"):
        line = line.strip()
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m and m.group(1):
            stages.add(m.group(1))
        m = re.match(r"ARG\s+(\w+)=(\S+)", line)
        if m:
            args[m.group(1)] = m.group(2)
        m = re.match(r"(COPY|ADD)\s+(.*)", line)
        if m:
            words = [w for w in m.group(2).split() if not w.startswith("--")]
            if not re.search(r"--from=", m.group(2)):
                copies += words[:-1]
        for mount in re.findall(r"--mount=(\S+)", line):
            opts = dict(o.split("=", 1) for o in mount.split(",") if "=" in o)
            if opts.get("type") == "bind" and "from" not in opts:
                binds.append(opts["source"])
        m = re.match(r"CMD\s+(\[.*\])", line)
        if m:
            cmd = yaml.safe_load(m.group(1))
    return stages, args, copies, binds, cmd

compose = yaml.safe_load(open(os.path.join(d, "compose.yaml"), encoding="utf-8"))
services = compose.get("services") or {}
for name in ("netns", "s2s-redirect", "jabberd2", "proxy"):
    if name not in services:
        bad.append(f"compose.yaml: no service {name}")
declared_volumes = set((compose.get("volumes") or {}).keys())
images = {}
for name, s in services.items():
    b = s.get("build")
    if b:
        ctx = os.path.normpath(os.path.join(d, b.get("context", ".")))
        df = os.path.join(ctx, b.get("dockerfile", "Dockerfile"))
        if need_file(ctx, f"service {name} build.context") and need_file(df, f"service {name} dockerfile"):
            stages, args, copies, binds, cmd = dockerfile(df)
            images[name] = (args, cmd)
            if b.get("target") and b["target"] not in stages:
                bad.append(f"service {name}: target {b['target']} is no stage of {os.path.relpath(df, src)}")
            for c in copies + binds:
                need_file(os.path.join(ctx, c), f"{os.path.relpath(df, src)} COPY/mount source")
    elif not s.get("image"):
        bad.append(f"service {name}: neither build nor image")
    nm = s.get("network_mode", "")
    if nm.startswith("service:") and nm[8:] not in services:
        bad.append(f"service {name}: network_mode names unknown service {nm[8:]}")
    for dep in s.get("depends_on") or {}:
        if dep not in services:
            bad.append(f"service {name}: depends_on unknown service {dep}")
    for v in s.get("volumes") or []:
        host = v.split(":")[0]
        if host.startswith((".", "/")):
            need_file(os.path.normpath(os.path.join(d, host)), f"service {name} volume")
        elif host not in declared_volumes:
            bad.append(f"service {name}: volume {host} is not declared under volumes:")

# Agreement between the files.
proxy_cfg = yaml.safe_load(open(os.path.join(d, "proxy.yaml"), encoding="utf-8"))
port = lambda addr: int(addr.rsplit(":", 1)[1])
lst = proxy_cfg["listeners"]
public = sorted(port(l["listen"]) for l in lst if not l["listen"].startswith("127."))
published = sorted(int(str(p).split(":")[-1].split("/")[0]) for p in services["netns"].get("ports", []))
if public != published:
    bad.append(f"netns publishes {published}, but proxy.yaml listens publicly on {public}")
s2s_out = [port(l["listen"]) for l in lst if l["kind"] == "s2s-out"]
env = services["s2s-redirect"].get("environment") or {}
if [int(env.get("XTP_S2S_OUT_PORT", 5271))] != s2s_out:
    bad.append(f"s2s-redirect XTP_S2S_OUT_PORT={env.get('XTP_S2S_OUT_PORT')} but proxy.yaml's s2s-out listens on {s2s_out}")
jargs = images.get("jabberd2", ({}, None))[0]
if str(env.get("XTP_BACKEND_UID")) != jargs.get("JABBER_UID"):
    bad.append(f"s2s-redirect XTP_BACKEND_UID={env.get('XTP_BACKEND_UID')} but docker/jabberd2 runs as uid {jargs.get('JABBER_UID')}")
hc = " ".join(services["proxy"]["healthcheck"]["test"])
m = re.search(r"/dev/tcp/([\d.]+)/(\d+)", hc)
if not m or f"{m.group(1)}:{m.group(2)}" != proxy_cfg.get("admin", {}).get("listen"):
    bad.append(f"the proxy health check asks {m.group(0) if m else '?'}, admin.listen is {proxy_cfg.get('admin')}")
if "/healthz" not in hc:
    bad.append("the proxy health check does not ask /healthz")
entry = open(os.path.join(d, "jabberd2", "entrypoint.sh"), encoding="utf-8").read()
for kind, var in (("c2s", "JABBERD2_C2S_PORT"), ("s2s", "JABBERD2_S2S_PORT")):
    m = re.search(var + r":-(\d+)", entry)
    for dom, dcfg in proxy_cfg["domains"].items():
        want = dcfg["backend"][kind]
        if not m or want != f"127.0.0.1:{m.group(1)}":
            bad.append(f"proxy.yaml backend.{kind} {want} is not where docker/jabberd2 listens ({var})")
mounts = [v.split(":")[1] for v in services["proxy"].get("volumes", [])]
cmd = images.get("proxy", ({}, None))[1] or []
if "-c" not in cmd or cmd[cmd.index("-c") + 1] not in mounts:
    bad.append(f"the image runs {cmd}, but compose mounts the configuration at {mounts}")
for path in (proxy_cfg["s2s"]["state_file"], proxy_cfg["s2s"]["dialback_secret_file"]):
    if not any(path.startswith(m + "/") for m in mounts):
        bad.append(f"proxy.yaml keeps {path} outside every volume of the proxy service")

for b in bad:
    print(b)
print(f"{len(services)} services, {len(bad)} problem(s)")
sys.exit(1 if bad else 0)
EOF
log "compose.yaml and Dockerfiles: $(tail -n 1 "$T/static.out")"

# ---- 2. the systemd unit ---------------------------------------------------------------------
# shellcheck disable=SC2016 # $MAINPID is systemd's, literally
for kv in Type=notify NotifyAccess=main 'ExecReload=/bin/kill -HUP $MAINPID' \
    StateDirectory=xmpp-tls-proxy ConfigurationDirectory=xmpp-tls-proxy \
    AmbientCapabilities=CAP_NET_BIND_SERVICE CapabilityBoundingSet=CAP_NET_BIND_SERVICE \
    NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
    MemoryDenyWriteExecute=yes 'SystemCallFilter=@system-service' \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' RestrictNamespaces=yes \
    LockPersonality=yes ProtectKernelTunables=yes ProtectControlGroups=yes \
    'ExecStart=/usr/local/sbin/xmpp-tls-proxy -c /etc/xmpp-tls-proxy/proxy.yaml'; do
    grep -qxF -- "$kv" "$UNIT" || fail "$UNIT lacks the line '$kv'"
done
grep -Eq '^(User=xmpp-tls-proxy|DynamicUser=yes)$' "$UNIT" || fail "$UNIT names no unprivileged user"
if command -v systemd-analyze >/dev/null && [ -x "$XTP_BIN" ]; then
    # The unit as installed, pointing at this build's binary (verify checks it is executable).
    sed "s#/usr/local/sbin/xmpp-tls-proxy#$XTP_BIN#g" "$UNIT" >"$T/xmpp-tls-proxy.service"
    systemd-analyze verify --man=no "$T/xmpp-tls-proxy.service" >"$T/verify.out" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$T/verify.out")"
    [ ! -s "$T/verify.out" ] || fail "systemd-analyze verify warns: $(cat "$T/verify.out")"
    systemd-analyze security --offline=yes "$T/xmpp-tls-proxy.service" >"$T/security.out" 2>&1 || true
    score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' "$T/security.out")
    [ -n "$score" ] || fail "systemd-analyze security printed no score: $(tail -3 "$T/security.out")"
    awk -v s="$score" 'BEGIN { exit !(s <= 2.0) }' ||
        fail "systemd-analyze security rates the unit $score (want <= 2.0, OK)"
    log "unit: systemd-analyze verify clean, exposure $score"
else
    log "unit: systemd-analyze or the proxy binary not available: keys checked only"
fi

# ---- 3. the man page -------------------------------------------------------------------------
need_cmd groff
groff -man -Tutf8 -ww -z "$MAN" >"$T/groff.out" 2>&1 || fail "groff failed on $MAN: $(cat "$T/groff.out")"
[ ! -s "$T/groff.out" ] || fail "groff warns about $MAN: $(cat "$T/groff.out")"
groff -man -Tascii -P-cbou "$MAN" >"$T/man.txt" 2>/dev/null || fail "groff could not render $MAN"
for word in '-c file' '--check' '--version' 'status' SIGHUP SIGTERM '/healthz' '/metrics' \
    '/status' 'proxy.yaml' 'dialback.secret' 'NOTIFY_SOCKET' 'EXIT STATUS'; do
    grep -qF -- "$word" "$T/man.txt" || fail "the man page does not mention '$word'"
done
log "man page: renders without warnings"

# ---- 4. init-iptables.sh in a private network namespace ---------------------------------------
XTP_BACKEND_UID=10522 XTP_EXCLUDE=10.9.0.0/16 sh "$D/init-iptables.sh" --dry-run >"$T/dry.out" ||
    fail "init-iptables.sh --dry-run failed"
grep -qxF 'iptables -t nat -A XTP_S2S_OUT -p tcp -j REDIRECT --to-ports 5271' "$T/dry.out" ||
    fail "init-iptables.sh --dry-run: no REDIRECT rule: $(cat "$T/dry.out")"
grep -qxF 'iptables -t nat -A OUTPUT -p tcp -m owner --uid-owner 10522 -j XTP_S2S_OUT' "$T/dry.out" ||
    fail "init-iptables.sh --dry-run: no owner match: $(cat "$T/dry.out")"
if sh "$D/init-iptables.sh" --dry-run 2>/dev/null; then fail "init-iptables.sh ran without XTP_BACKEND_UID"; fi
if [ "$(id -u)" = 0 ] && command -v iptables >/dev/null && command -v unshare >/dev/null &&
    command -v setpriv >/dev/null && unshare --net true 2>/dev/null; then
    cat >"$T/netns.sh" <<'EOF'
set -eu
d=$1 py=$2 out=$3
ip link set lo up
ip link add xtp0 type veth peer name xtp1
ip addr add 192.0.2.2/24 dev xtp0
ip link set xtp0 up
ip link set xtp1 up
export XTP_BACKEND_UID=10522 XTP_S2S_OUT_PORT=15271 XTP_IPV6=reject
sh "$d/init-iptables.sh" 2>"$out/init1.err"
sh "$d/init-iptables.sh" 2>"$out/init2.err"      # a rerun replaces, never adds
iptables -t nat -S >"$out/nat.rules"
ip6tables -S >"$out/filter6.rules"
"$py" - "$out/listener.out" <<'PY' &
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 15271))
s.listen()
s.settimeout(8)
with open(sys.argv[1], "w") as f:
    f.write("listening\n"); f.flush()
    try:
        while True:
            c, a = s.accept()
            d = c.getsockopt(socket.SOL_IP, 80, 16)   # SO_ORIGINAL_DST
            port, = struct.unpack("!H", d[2:4])
            f.write(f"accepted original={socket.inet_ntoa(d[4:8])}:{port}\n"); f.flush()
            c.close()
    except socket.timeout:
        pass
PY
lp=$!
for i in $(seq 50); do grep -q listening "$out/listener.out" 2>/dev/null && break; sleep 0.1; done
setpriv --reuid=10522 --regid=10522 --clear-groups "$py" -c '
import socket; socket.create_connection(("192.0.2.1", 5269), timeout=3).close()' \
    && echo backend-connected >>"$out/client.out" || echo backend-failed >>"$out/client.out"
"$py" -c '
import socket; socket.create_connection(("192.0.2.1", 5269), timeout=1).close()' 2>/dev/null \
    && echo other-connected >>"$out/client.out" || echo other-not-redirected >>"$out/client.out"
kill "$lp" 2>/dev/null || true
wait "$lp" 2>/dev/null || true
sh "$d/init-iptables.sh" --remove 2>/dev/null
iptables -t nat -S >"$out/nat-after.rules"
ip6tables -S >"$out/filter6-after.rules"
EOF
    unshare --net bash "$T/netns.sh" "$D" "$PY" "$T" >"$T/netns.out" 2>&1 ||
        fail "init-iptables.sh in a network namespace: $(cat "$T/netns.out" "$T"/init*.err 2>/dev/null)"
    grep -qx 'backend-connected' "$T/client.out" || fail "the backend's connection was not redirected: $(cat "$T/client.out")"
    grep -qx 'accepted original=192.0.2.1:5269' "$T/listener.out" ||
        fail "the s2s-out port did not see the original destination: $(cat "$T/listener.out")"
    [ "$(grep -c accepted "$T/listener.out")" = 1 ] || fail "another user's connection was redirected too"
    grep -qx 'other-not-redirected' "$T/client.out" || fail "another user's connection reached the listener"
    [ "$(grep -c -- '-j REDIRECT' "$T/nat.rules")" = 1 ] || fail "REDIRECT rules after two runs: $(cat "$T/nat.rules")"
    [ "$(grep -c -- '--uid-owner 10522' "$T/nat.rules")" = 1 ] || fail "OUTPUT jumps after two runs: $(cat "$T/nat.rules")"
    grep -q -- '--reject-with tcp-reset' "$T/filter6.rules" || fail "no IPv6 reject rule: $(cat "$T/filter6.rules")"
    if grep -q XTP_S2S_OUT "$T/nat-after.rules" "$T/filter6-after.rules"; then
        fail "--remove left rules: $(cat "$T/nat-after.rules" "$T/filter6-after.rules")"
    fi
    log "init-iptables.sh: backend uid redirected (original destination kept), others not, idempotent, removable"
else
    log "init-iptables.sh: dry run only (needs root, iptables, unshare and setpriv for the namespace test)"
fi

# ---- 5. the image's build steps --------------------------------------------------------------
need_cmd cmake strip ldd dpkg-query
JOBS=${JOBS:-2} bash "$D/build.sh" build "$T/image" >"$T/build.out" 2>&1 ||
    fail "docker/build.sh build: $(tail -n 40 "$T/build.out")"
[ -x "$T/image/xmpp-tls-proxy" ] || fail "build.sh made no binary"
if readelf -S "$T/image/xmpp-tls-proxy" 2>/dev/null | grep -q '\.debug_info'; then
    fail "the image's binary is not stripped"
fi
for f in runtime-libs.txt runtime-packages.txt; do
    [ -s "$T/image/$f" ] || fail "build.sh wrote no $f"
done
# Every library the stripped binary loads has its package in the list (dpkg's records use
# either side of the merged /usr, so ask by file name).
while read -r lib; do
    pkgs=$(dpkg-query -S "*/$(basename "$lib")" 2>/dev/null | sed -n 's/^\([^:,]*\).*/\1/p')
    [ -n "$pkgs" ] || fail "no package owns $lib"
    printf '%s\n' "$pkgs" | grep -qxFf "$T/image/runtime-packages.txt" ||
        fail "runtime-packages.txt lacks $pkgs ($lib): $(cat "$T/image/runtime-packages.txt")"
done < <(ldd "$T/image/xmpp-tls-proxy" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
grep -q '^libmbedtls' "$T/image/runtime-packages.txt" || fail "runtime-packages.txt names no mbedTLS package"
log "build.sh: $(tail -n 1 "$T/build.out" | sed 's/^build.sh: //')"

# The unit's system call filter (@system-service without @privileged) and address families
# (AF_INET, AF_INET6, AF_UNIX) against what the image's binary really calls: start, a STARTTLS
# and a Direct TLS handshake, the admin endpoints, a reload, a drain.
if command -v strace >/dev/null && command -v systemd-analyze >/dev/null && command -v openssl >/dev/null; then
    S=$T/syscalls
    mkdir -p "$S"
    cp "$CERT" "$KEY" "$S/"
    chmod 600 "$S/$(basename "$KEY")"
    SC1=$(free_port) SC2=$(free_port) SCA=$(free_port)
    cat >"$S/p.yaml" <<EOF
log: { level: info }
admin: { listen: "127.0.0.1:$SCA" }
domains:
  $DOMAIN: { cert: $(basename "$CERT"), key: $(basename "$KEY"), backend: { c2s: "127.0.0.1:1" } }
listeners:
  - { name: c2s, listen: "127.0.0.1:$SC1", kind: c2s }
  - { name: c2s-direct, listen: "127.0.0.1:$SC2", kind: c2s, tls: direct }
EOF
    strace -f -qq -o "$S/strace.out" "$T/image/xmpp-tls-proxy" -c "$S/p.yaml" </dev/null 2>"$S/log" &
    SPID=$!
    _LIB_BG+=("$SPID")
    wait_port "$SC2" 10 || fail "the traced proxy did not start: $(cat "$S/log")"
    XPID=$(pgrep -P "$SPID" | head -n 1)
    timeout 10 openssl s_client -starttls xmpp -xmpphost "$DOMAIN" -connect "127.0.0.1:$SC1" </dev/null >/dev/null 2>&1 || true
    timeout 10 openssl s_client -alpn xmpp-client -servername "$DOMAIN" -connect "127.0.0.1:$SC2" </dev/null >/dev/null 2>&1 || true
    if port_listening "$SCA"; then
        for path in /healthz /metrics /status; do
            # shellcheck disable=SC2016 # the inner script's own arguments
            timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"; printf "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" "$2" >&3; cat <&3 >/dev/null' _ "$SCA" "$path" || true
        done
    fi
    if grep -q SIGHUP "$XTP_SRC/proxy/main.c"; then
        kill -HUP "$XPID"
        wait_until 5 grep -q 'reload' "$S/log" || true
    fi
    kill -TERM "$XPID"
    for ((i = 0; i < 100; i++)); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    wait "$SPID" 2>/dev/null || true
    grep -q ' close reason=' "$S/log" || fail "the traced proxy logged no session: $(cat "$S/log")"
    systemd-analyze syscall-filter >"$S/groups.txt" 2>/dev/null
    "$PY" - "$S" <<'EOF' || fail "the unit's sandbox would stop the proxy: $(cat "$S/verdict")"
import re, sys
s = sys.argv[1]
groups, cur = {}, None
for line in open(f"{s}/groups.txt"):
    if line.startswith("@"):
        cur = line.split()[0]
        groups[cur] = []
    elif cur and line.startswith("    ") and not line.strip().startswith("#"):
        groups[cur].append(line.strip())
def expand(g, seen):
    out = set()
    for m in groups.get(g, []):
        if m.startswith("@"):
            if m not in seen:
                seen.add(m)
                out |= expand(m, seen)
        else:
            out.add(m)
    return out
allowed, privileged = expand("@system-service", set()), expand("@privileged", set())
trace = open(f"{s}/strace.out").read()
used = set(re.findall(r"^\d+\s+([a-z_0-9]+)\(", trace, re.M))
families = set(re.findall(r"socket\((AF_[A-Z0-9]+)", trace))
bad = sorted(used - allowed) + sorted(used & privileged)
fams = sorted(families - {"AF_INET", "AF_INET6", "AF_UNIX"})
with open(f"{s}/verdict", "w") as f:
    f.write(f"{len(used)} system calls; outside the filter: {bad or 'none'}; "
            f"address families outside RestrictAddressFamilies: {fams or 'none'}\n")
sys.exit(1 if (bad or fams or not used) else 0)
EOF
    log "unit sandbox: $(cat "$S/verdict")"
else
    log "unit sandbox: strace or systemd-analyze missing, system calls not traced"
fi

# ---- 6. the sidecar, without Docker ----------------------------------------------------------
[ -x "$XTP_BIN" ] || skip "proxy binary not built: $XTP_BIN"
[ -x /usr/sbin/jabberd2-c2s ] || skip "jabberd2 not installed (scripts/deps.sh test)"
need_cmd sqlite3 timeout
need_certs
JDATA=$T/jabberd2
mkdir -p "$JDATA" "$T/etc/certs" "$T/state"
BC=$(free_port) BS=$(free_port) BR=$(free_port)
bg env XMPP_DOMAIN=$DOMAIN JABBERD2_USERS="alice:secret bob:secret" JABBERD2_DATA="$JDATA" \
    JABBERD2_C2S_PORT="$BC" JABBERD2_S2S_PORT="$BS" JABBERD2_ROUTER_PORT="$BR" TMPDIR="$T" \
    bash "$D/jabberd2/entrypoint.sh" >"$T/jabberd2.out" 2>&1
EP_PID=$BG_PID
wait_until 30 grep -q 'jabberd2 for .* ready' "$T/jabberd2.out" ||
    fail "docker/jabberd2/entrypoint.sh did not get jabberd2 ready: $(tail -n 30 "$T/jabberd2.out")"
# Let the harness stop these jabberd2 processes even if this test fails before the entrypoint
# has stopped them (jabberd2-local.sh stop reads DIR/pids and checks each command line).
for n in router sm s2s c2s; do
    printf '%s %s\n' "$n" "$(cat "$T/jabberd2-logs/$n.pid")" >>"$JDATA/etc/pids"
done
_LIB_DIRS+=("$JDATA/etc")
XMPP_DOMAIN=$DOMAIN JABBERD2_C2S_PORT=$BC bash "$D/jabberd2/entrypoint.sh" health ||
    fail "entrypoint.sh health fails on a running jabberd2"
grep -q '<origins><ip>0.0.0.0</ip></origins>' "$JDATA/etc/s2s.xml" || fail "s2s.xml has no <origins> 0.0.0.0"
if grep -q 'out-conn-reuse' "$JDATA/etc/s2s.xml"; then fail "s2s.xml still has <out-conn-reuse/>"; fi

P_C2S=$(free_port) P_C2SD=$(free_port) P_S2S=$(free_port) P_S2SD=$(free_port)
P_OUT=$(free_port) P_ADMIN=$(free_port)
cp "$CERT" "$KEY" "$T/etc/certs/"
sed -e "s#0.0.0.0:5222#127.0.0.1:$P_C2S#; s#0.0.0.0:5223#127.0.0.1:$P_C2SD#" \
    -e "s#0.0.0.0:5269#127.0.0.1:$P_S2S#; s#0.0.0.0:5270#127.0.0.1:$P_S2SD#" \
    -e "s#127.0.0.1:5271#127.0.0.1:$P_OUT#; s#127.0.0.1:9480#127.0.0.1:$P_ADMIN#" \
    -e "s#127.0.0.1:15222#127.0.0.1:$BC#; s#127.0.0.1:15269#127.0.0.1:$BS#" \
    -e "s#/var/lib/xmpp-tls-proxy/#$T/state/#" -e "s#ca_file: .*#ca_file: $CA#" \
    "$D/proxy.yaml" >"$T/etc/proxy.yaml"
if grep -Eq ':(5222|5223|5269|5270|5271|9480|15222|15269)"|/var/lib/' "$T/etc/proxy.yaml"; then
    fail "the test's copy of docker/proxy.yaml still has an original port or path"
fi
"$XTP_BIN" --check -c "$T/etc/proxy.yaml" >"$T/check.out" 2>&1 || fail "docker/proxy.yaml: $(cat "$T/check.out")"
PROXY_STARTTLS_PORT=$P_C2S PROXY_DIRECT_PORT=$P_C2SD
start_proxy "$T/etc/proxy.yaml"
for p in "$P_S2S" "$P_S2SD" "$P_OUT"; do
    wait_port "$p" 10 || fail "the s2s listeners of docker/proxy.yaml did not come up ($p)"
done
xmpp_client starttls "$P_C2S" >"$T/client-starttls.out" 2>&1 ||
    fail "alice and bob over STARTTLS through the sidecar: $(tail -n 20 "$T/client-starttls.out")"
xmpp_client direct "$P_C2SD" >"$T/client-direct.out" 2>&1 ||
    fail "alice and bob over Direct TLS through the sidecar: $(tail -n 20 "$T/client-direct.out")"
[ -s "$T/state/dialback.secret" ] || fail "no dialback secret created in the state folder"

# The health check of compose.yaml, on this proxy's admin port.
HC=$("$PY" -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["services"]["proxy"]["healthcheck"]["test"][3])' "$D/compose.yaml")
health() { timeout 10 bash -c "${HC//9480/$1}"; }
if wait_port "$P_ADMIN" 3; then
    health "$P_ADMIN" || fail "the compose health check fails against this proxy's /healthz"
    log "health check: 200 from the proxy's own /healthz"
else
    log "health check: this build does not serve admin.listen yet; checked against a stub"
fi
for code in 200 503; do
    SP=$(free_port)
    bg "$PY" -c '
import http.server, sys
code, port = int(sys.argv[1]), int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/healthz"
        self.send_response(code if ok else 404)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n" if ok else b"no\n")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()' "$code" "$SP"
    wait_port "$SP" 5 || fail "the health check stub did not start"
    if health "$SP"; then got=0; else got=1; fi
    [ "$got" = "$([ "$code" = 200 ] && echo 0 || echo 1)" ] ||
        fail "the compose health check exits $got for /healthz answering $code"
done
if health "$(free_port)"; then fail "the compose health check passes with nothing listening"; fi

stop_proxy
[ -z "$PROXY_VERDICT" ] || fail "$PROXY_VERDICT"
"$PY" - "$PROXY_LOG" >"$T/sessions.out" 2>&1 <<'EOF' || { cat "$T/sessions.out"; fail "the sidecar's log (above)"; }
import json, re, sys
opens, closes, bad = {}, {}, []
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    try:
        ev = json.loads(line)
    except ValueError:
        bad.append(f"line {n} is not JSON: {line.strip()[:120]}")
        continue
    if set(ev) != {"ts", "level", "msg"}:
        bad.append(f"line {n}: fields {sorted(ev)}")
    m = re.match(r"conn=(\d+) listener=(c2s|c2s-direct) peer=\S+ state=\S+ (open|close) ", ev.get("msg", ""))
    if m:
        (opens if m.group(3) == "open" else closes).setdefault(m.group(1), []).append(ev["msg"])
for cid in sorted(set(opens) | set(closes), key=int):
    if len(opens.get(cid, [])) != 1 or len(closes.get(cid, [])) != 1:
        bad.append(f"conn={cid}: {len(opens.get(cid, []))} open and {len(closes.get(cid, []))} close lines")
    elif "tls=TLSv1." not in opens[cid][0] or " reason=done " not in closes[cid][0]:
        bad.append(f"conn={cid}: {opens[cid][0]} / {closes[cid][0]}")
if len(opens) < 4:
    bad.append(f"{len(opens)} c2s sessions opened, expected 4 (alice and bob, twice)")
print("\n".join(bad) or f"{len(opens)} sessions, one open and one close line each, JSON")
sys.exit(1 if bad else 0)
EOF
log "sidecar: $(tail -n 1 "$T/sessions.out")"
kill -TERM "$EP_PID" 2>/dev/null || true
for ((i = 0; i < 150; i++)); do kill -0 "$EP_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$EP_PID" 2>/dev/null && fail "entrypoint.sh did not stop jabberd2 within 15 s of SIGTERM"
wait "$EP_PID" 2>/dev/null || fail "entrypoint.sh exited non-zero after SIGTERM: $(tail -n 5 "$T/jabberd2.out")"
for n in router sm s2s c2s; do
    pid=$(cat "$T/jabberd2-logs/$n.pid")
    if [ -d "/proc/$pid" ] && grep -q "jabberd2-$n" "/proc/$pid/cmdline" 2>/dev/null; then
        fail "jabberd2-$n survived the entrypoint's stop"
    fi
done

# ---- 7. make install -------------------------------------------------------------------------
if grep -q '^install:' "$XTP_SRC/Makefile"; then
    for prefix in /usr/local /usr; do
        R=$T/root$prefix
        make -s -C "$XTP_SRC" -o build -o deps-build install DESTDIR="$R" PREFIX="$prefix" \
            BUILD="$(dirname "$XTP_BIN")" >"$T/install.out" 2>&1 ||
            fail "make install PREFIX=$prefix: $(cat "$T/install.out")"
        [ -x "$R$prefix/sbin/xmpp-tls-proxy" ] || fail "make install: no $prefix/sbin/xmpp-tls-proxy"
        [ -r "$R/etc/xmpp-tls-proxy/example.yaml" ] || fail "make install: no /etc/xmpp-tls-proxy/example.yaml"
        [ -r "$R$prefix/share/man/man8/xmpp-tls-proxy.8" ] || fail "make install: no man page in $prefix"
        u=$R$prefix/lib/systemd/system/xmpp-tls-proxy.service
        grep -qx "ExecStart=$prefix/sbin/xmpp-tls-proxy -c /etc/xmpp-tls-proxy/proxy.yaml" "$u" ||
            fail "make install PREFIX=$prefix: the unit does not run $prefix/sbin/xmpp-tls-proxy"
    done
    log "make install: binary, example, unit and man page, for /usr/local and /usr"
else
    log "make install: the Makefile has no install target yet"
fi

# ---- 8. the examples in the documentation ----------------------------------------------------
"$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$T/doc-ticket.key"
"$PY" -c 'import secrets; print(secrets.token_hex(32))' >"$T/doc-dialback.secret"
chmod 600 "$T/doc-ticket.key" "$T/doc-dialback.secret"
"$PY" - "$XTP_SRC" "$T" "$XTP_BIN" >"$T/docs.out" 2>&1 <<'EOF' || { cat "$T/docs.out"; fail "an example in docs/ is broken (above)"; }
import os, re, subprocess, sys, yaml

src, t, xbin = sys.argv[1:4]
cfg_c = open(os.path.join(src, "proxy/cfg.c"), encoding="utf-8").read()
known = set(re.findall(r'\{\s*"([a-z0-9_]+)"\s*,\s*YAML_\w+_NODE', cfg_c))
certs = os.path.join(src, "tests/certs")
bad, skipped, docs, checked = [], [], 0, 0

def keys(node, top=True):
    """The key names a proxy configuration uses (domain names are not keys)."""
    out = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            if k in ("domains", "remotes"):
                for sub in (v or {}).values():
                    out |= keys(sub, False)
            elif k != "static":
                out |= keys(v, False)
    elif isinstance(node, list):
        for x in node:
            out |= keys(x, False)
    return out

def point_at_test_files(c):
    for d in (c.get("domains") or {}).values():
        d["cert"] = os.path.join(certs, "example.org.crt")
        d["key"] = os.path.join(certs, "example.org.key")
    tls = c.get("tls") or {}
    if "ticket_key_file" in tls:
        tls["ticket_key_file"] = os.path.join(t, "doc-ticket.key")
    tls.pop("ca_file", None)
    s2s = c.setdefault("s2s", {})
    s2s["dialback_secret_file"] = os.path.join(t, "doc-dialback.secret")
    s2s["state_file"] = os.path.join(t, "doc-remote-certs")
    return c

def check_proxy_config(where, c):
    global checked
    unknown = sorted(k for k in keys(c) if k not in known)
    if unknown:
        skipped.append(f"{where} (keys this parser lacks: {', '.join(unknown)})")
        return
    path = os.path.join(t, f"doc{checked}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(point_at_test_files(c), f)
    r = subprocess.run([xbin, "--check", "-c", path], capture_output=True, text=True)
    checked += 1
    if r.returncode != 0:
        bad.append(f"{where}: --check: {(r.stdout + r.stderr).strip()}")

for name in ("docs/config.md", "docs/operator-guide.md", "docs/scaling.md"):
    text = open(os.path.join(src, name), encoding="utf-8").read()
    for m in re.finditer(r"^```yaml\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        try:
            parsed = list(yaml.safe_load_all(m.group(1)))
        except yaml.YAMLError as e:
            bad.append(f"{name}:{line}: YAML does not parse: {e}")
            continue
        for d in parsed:
            docs += 1
            if not isinstance(d, dict):
                continue
            if "listeners" in d and "domains" in d:
                check_proxy_config(f"{name}:{line}", d)
            if "apiVersion" in d and not d.get("kind"):
                bad.append(f"{name}:{line}: a manifest without kind")
            if d.get("kind") == "ConfigMap":
                for v in (d.get("data") or {}).values():
                    c = yaml.safe_load(v)
                    if isinstance(c, dict) and "listeners" in c:
                        check_proxy_config(f"{name}:{line} ConfigMap {d['metadata']['name']}", c)
for sk in skipped:
    print("skipped " + sk)
for b in bad:
    print(b)
print(f"{docs} YAML documents parse; {checked} proxy configurations pass --check, "
      f"{len(skipped)} skipped")
sys.exit(1 if bad else 0)
EOF
log "docs: $(tail -n 1 "$T/docs.out")"
while read -r l; do log "  $l"; done < <(grep '^skipped' "$T/docs.out")
if command -v haproxy >/dev/null; then
    awk '/^```haproxy/ { f = 1; next } /^```/ { f = 0 } f' "$XTP_SRC/docs/scaling.md" >"$T/haproxy.cfg"
    [ -s "$T/haproxy.cfg" ] || fail "docs/scaling.md has no haproxy block"
    haproxy -c -f "$T/haproxy.cfg" >"$T/haproxy.out" 2>&1 ||
        fail "haproxy -c rejects docs/scaling.md's configuration: $(cat "$T/haproxy.out")"
    log "docs: haproxy -c accepts scaling.md's HAProxy configuration"
else
    log "docs: haproxy not installed, its configuration not checked"
fi
pass
