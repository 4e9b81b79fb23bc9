#!/bin/bash
# t21-xml-bombs: hostile XML before TLS (STARTTLS listener) and inside TLS (STARTTLS and Direct
# TLS): billion laughs and external/parameter entities in a DOCTYPE (<restricted-xml/>, RFC 6120
# §11.1), entity references with no declaration and a character reference to NUL
# (<not-well-formed/>), 10,000-deep nesting (<policy-violation/>), a 10 MB attribute in a stanza
# and in the stream header (<policy-violation/> after limits.max_stanza, long before 10 MB
# arrive), invalid UTF-8 of five kinds and raw NUL bytes (<not-well-formed/>), undeclared
# namespace prefixes on a stanza and on the stream header (<bad-namespace-prefix/>).
# For each: the stream error named, the connection closed within 3 s, exactly one log line per
# session (its close line naming the error; sessions that reached the relay also have their
# open line), the proxy alive with bounded memory, the attacked domain's backend (recorder.py)
# never sees a byte of the payload, and a logged-in session next door keeps working.
# (t05 covers the small DOCTYPE/ENTITY/PI/comment cases before TLS.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"

LOG_LEVEL=info MAX_STANZA=64KiB attack_setup starttls
P=$T/payloads
mkdir -p "$P"
HDR=$(stream_header "$ORG")

# Payloads, written by Python so that the bytes are exact (NUL, invalid UTF-8, 10 MB).
"$PY" - "$P" "$HDR" <<'EOF'
import os, sys
d, hdr = sys.argv[1], sys.argv[2].encode()
decl, stream_tag = hdr.split(b"?>", 1)[0] + b"?>", hdr.split(b"?>", 1)[1]
def w(name, data):
    open(os.path.join(d, name), "wb").write(data)
lol = b"".join(b"<!ENTITY lol%d '%s'>" % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))
w("laughs.prolog", decl + b"<!DOCTYPE stream:stream [<!ENTITY lol0 'lol'>" + lol + b"]>" + stream_tag)
w("xxe.prolog", decl + b"<!DOCTYPE stream:stream [<!ENTITY xxe SYSTEM 'file:///etc/passwd'>]>" + stream_tag)
w("pe.prolog", decl + b"<!DOCTYPE stream:stream [<!ENTITY % pe '<!ENTITY x \"y\">'> %pe;]>" + stream_tag)
w("entity-ref", b"<message to='a@example.org'><body>&lol9;&xxe;</body></message>")
w("nul-charref", b"<message to='a@example.org'><body>&#0;</body></message>")
w("deep", b"<message>" + b"<a>" * 10000)
big = b"x" * (10 * 1024 * 1024)
w("big-attr", b"<message to='a@example.org' pad='" + big + b"'/>")
w("big-attr-header.begin", decl + stream_tag[:-1] + b" pad='" + big + b"'>")
body = lambda b: b"<message to='a@example.org'><body>ok " + b + b" ok</body></message>"
w("utf8-continuation", body(b"\x80"))
w("utf8-overlong", body(b"\xc0\xaf"))
w("utf8-surrogate", body(b"\xed\xa0\x80"))
w("utf8-beyond", body(b"\xf5\x80\x80\x80"))
w("utf8-truncated", body(b"\xe2\x82"))
w("nul", body(b"\x00"))
w("nul-header.begin", decl + stream_tag[:-1] + b" id='\x00'>")
w("prefix", b"<foo:message xmlns='jabber:client' to='a@example.org'/>")
w("prefix-header.begin", decl + stream_tag.replace(b"<stream:stream", b"<stream:stream xmlns:x='urn:x'")[:-1] + b" x:a='1' y:b='2'>")
w("empty", b"")
EOF

opened=0 # sessions that reached the relay (the recorder saw their header)
# attack NAME MODE PAYLOAD CONDITION ERROR [prolog|begin]: one session against $ORG; PAYLOAD is
# a file under $P. prolog/begin: PAYLOAD.prolog or PAYLOAD.begin starts the stream itself (so
# the proxy never gets a header it could accept); otherwise the payload follows the features.
attack() {
    local name=$1 mode=$2 payload=$3 cond=$4 err=$5 how=${6:-} port=$PROXY_STARTTLS_PORT
    local args=() out=$T/$1.out reached=
    [ "$mode" = direct ] && port=$PROXY_DIRECT_PORT
    case "$how" in
    prolog | begin) args=(--begin-file "$P/$payload.$how" --payload-file "$P/empty") ;;
    *)
        args=(--wait-features --payload-file "$P/$payload")
        [ "$mode" = plain ] || reached=opened
        ;;
    esac
    attack_mark
    "$PY" "$LIB_DIR/xmlattack.py" --port "$port" --mode "$mode" --ca "$CA" --domain "$ORG" \
        "${args[@]}" --timeout 8 --expect-stream-error "$cond" --expect-closed --max-seconds 3 \
        >"$out" 2>&1 || {
        cat "$out"
        fail "$name ($mode): expected <$cond/> and a close within 3 s"
    }
    expect_closes 1 peer-protocol "error=$err" "$reached"
    [ -n "$reached" ] && opened=$((opened + 1))
    [ "$(recorder_conns)" = "$opened" ] ||
        fail "$name ($mode): the backend has $(recorder_conns) connections, expected $opened"
    proxy_alive || fail "$name ($mode): the proxy died"
    log "$name ($mode): <$cond/> $(grep -o 'sent .*after [0-9.]* s' "$out")"
}

# Two rounds: the first warms the allocator up (first use of each size, TLS contexts, ASan's
# small quarantine); over the second the proxy must not grow.
for round in 1 2; do
    [ "$round" = 2 ] && rss0=$(rss_kib)
    for mode in plain starttls direct; do
        attack billion-laughs "$mode" laughs restricted-xml ERESTRICTED prolog
        attack external-entity "$mode" xxe restricted-xml ERESTRICTED prolog
        attack parameter-entity "$mode" pe restricted-xml ERESTRICTED prolog
        attack undeclared-entity "$mode" entity-ref not-well-formed EXML
        attack nul-charref "$mode" nul-charref not-well-formed EXML
        attack deep-10000 "$mode" deep policy-violation EDEPTH
        before=$(rss_kib)
        attack attr-10MB "$mode" big-attr policy-violation ETOOBIG
        rss_check "10 MB attribute ($mode)" "$before" 2048
        before=$(rss_kib)
        attack header-attr-10MB "$mode" big-attr-header policy-violation ETOOBIG begin
        rss_check "10 MB attribute in the header ($mode)" "$before" 2048
        for u in continuation overlong surrogate beyond truncated; do
            attack "utf8-$u" "$mode" "utf8-$u" not-well-formed EXML
        done
        attack nul "$mode" nul not-well-formed EXML
        attack nul-header "$mode" nul-header not-well-formed EXML begin
        attack undeclared-prefix "$mode" prefix bad-namespace-prefix EPREFIX
        attack undeclared-prefix-header "$mode" prefix-header bad-namespace-prefix EPREFIX begin
    done
done

recorder_only_headers || fail "the attacked domain's backend received attacker bytes"
log "the backend of $ORG got $(recorder_conns) connections, each with the proxy's header only"
rss_check "over the second round of $((3 * 19)) hostile streams" "$rss0" 1024
stop_guard
[ "$(jabberd2_connects)" = 1 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected the guard's only"
pass
