#!/bin/bash
# t09-testssl: testssl.sh 3.0 audits the c2s STARTTLS listener (--starttls xmpp): protocols
# (-p), cipher categories (-s), forward secrecy (-f) and every suite per protocol (-E). The JSON
# must show no SSLv2, SSLv3, TLS 1.0 or TLS 1.1; no NULL, anonymous, EXPORT, RC4, DES/3DES or
# CBC suite; forward secrecy on every suite. The chain is not judged (the test CA is unknown to
# testssl.sh, which is fine).
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

TESTSSL=$(command -v testssl.sh || command -v testssl || true)
[ -n "$TESTSSL" ] || skip "testssl.sh not installed (scripts/deps.sh test)"
need_cmd timeout

start_jabberd2 "$DOMAIN"
write_proxy_config "$T/proxy.yaml"
start_proxy "$T/proxy.yaml"

log "running $TESTSSL (about a minute)"
rc=0
timeout 300 "$TESTSSL" --quiet --color 0 --warnings batch --starttls xmpp --xmpphost "$DOMAIN" \
    --connect-timeout 10 --openssl-timeout 10 --jsonfile-pretty "$T/testssl.json" \
    -p -s -f -E "127.0.0.1:$PROXY_STARTTLS_PORT" >"$T/testssl.out" 2>&1 || rc=$?
# testssl.sh exits with a count of problems it saw (e.g. the untrusted test CA): judge the JSON.
[ "$rc" != 124 ] || fail "testssl.sh did not finish within 300 s"
[ -s "$T/testssl.json" ] || {
    tail -n 30 "$T/testssl.out"
    fail "testssl.sh wrote no JSON (exit $rc)"
}

"$PY" - "$T/testssl.json" <<'EOF' || fail "testssl.sh findings above"
import json, re, sys

doc = json.load(open(sys.argv[1]))
results = doc["scanResult"]
if not results:
    sys.exit("no scan result")
res = results[0]
bad, seen = [], {}

def items(section):
    return res.get(section) or []

# Protocols: only TLS 1.2 and TLS 1.3.
for f in items("protocols"):
    seen[f["id"]] = f["finding"]
    if f["id"] in ("SSLv2", "SSLv3", "TLS1", "TLS1_1") and not f["finding"].startswith("not offered"):
        bad.append(f"protocol {f['id']}: {f['finding']}")
    if f["severity"] in ("FATAL", "WARN") and f["id"].startswith(("SSL", "TLS")):
        bad.append(f"protocol check {f['id']} did not run: {f['finding']}")
for p in ("TLS1_2", "TLS1_3"):
    if not seen.get(p, "").startswith("offered"):
        bad.append(f"{p} not offered: {seen.get(p)}")

# Cipher categories (-s): the weak ones must be "not offered".
weak_cats = ("cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW",
             "cipherlist_3DES_IDEA", "cipherlist_AVERAGE", "cipherlist_OBSOLETED")
cats = {f["id"]: f["finding"] for f in items("ciphers") if f["id"].startswith("cipherlist_")}
for c in weak_cats:
    if c in cats and not cats[c].startswith("not offered"):
        bad.append(f"{c}: {cats[c]}")
if not cats:
    bad.append("no cipher category results (-s)")

# Every suite per protocol (-E): AEAD with forward secrecy only.
suites = [f for f in items("cipherTests") if f["id"].startswith("cipher-")]
if not suites:
    bad.append("no per-protocol cipher results (-E)")
for f in suites:
    # "TLS 1.2   xc02b   ECDHE-ECDSA-AES128-GCM-SHA256   ECDH 253   AESGCM   128   TLS_ECDHE_..."
    m = re.match(r"(SSLv[23]|TLS 1(?:\.[0-3])?)\s+x[0-9a-fA-F]+\s+(\S+)", f["finding"])
    if not m:
        bad.append(f"unparsed cipher line: {f['finding']}")
        continue
    proto, name = m.groups()
    if proto != "TLS 1.2" and proto != "TLS 1.3":
        bad.append(f"suite offered with {proto}: {f['finding']}")
    elif re.search(r"NULL|anon|ADH|AECDH|EXP|RC4|DES|IDEA|SEED|MD5", f["finding"]):
        bad.append(f"weak suite: {f['finding']}")
    elif proto == "TLS 1.3":
        pass  # every TLS 1.3 suite is AEAD with (EC)DHE
    elif not re.search(r"GCM|CHACHA20|CCM", name):
        bad.append(f"non-AEAD (CBC) suite: {f['finding']}")
    elif not re.match(r"(ECDHE|DHE)-", name):
        bad.append(f"suite without forward secrecy: {f['finding']}")

# Forward secrecy (-f); testssl.sh 3.0 calls the section "pfs", later versions "fs".
fs = {f["id"].replace("PFS", "FS"): f["finding"] for f in items("pfs") + items("fs")}
if not fs:
    bad.append("no forward secrecy results (-f)")
elif not fs.get("FS", "").startswith("offered"):
    bad.append(f"forward secrecy: {fs.get('FS')}")

print("testssl.sh: protocols: " + ", ".join(f"{k}={v}" for k, v in seen.items()))
print("testssl.sh: suites: " + "; ".join(
    re.sub(r"^(TLS 1\.[0-3]|\S+)\s+x[0-9a-fA-F]+\s+(\S+).*", r"\1 \2", f["finding"]) for f in suites))
print("testssl.sh: forward secrecy: " + fs.get("FS", "?") + "; curves: " +
      fs.get("FS_ECDHE_curves", "?") + "; DH groups: " + fs.get("DH_groups", "none"))
for b in bad:
    print("testssl.sh finding: " + b)
sys.exit(1 if bad else 0)
EOF
proxy_alive || fail "the proxy died"
pass
