#!/bin/bash
# t20-tls-downgrade: downgrade offers on both listeners (STARTTLS and Direct TLS) are refused
# during the handshake, never answered with a ServerHello: SSLv2-format and SSLv3 hellos,
# TLS 1.0 and 1.1, TLS 1.2 offering only RC4, NULL, anonymous, EXPORT, CBC, static-RSA (no
# forward secrecy) or finite-field DHE suites, TLS 1.3 offering only ffdhe groups
# (tlsattack.py crafts what OpenSSL 3 cannot send), and the same through openssl s_client at
# @SECLEVEL=0 where it can. Two good crafted hellos are answered, so the refusals are the
# proxy's judgement, not malformed probes. Each refused session logs exactly one line, its
# close line with reason=tls-error; the backend of the attacked domain never sees a
# connection; the proxy's memory stays flat; a logged-in session next door keeps working.
# (t04 covers TLS 1.1 and CBC over STARTTLS with s_client, t09 the testssl.sh view.)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=attack.sh
. "$LIB_DIR/attack.sh"
need_cmd openssl

LOG_LEVEL=info attack_setup direct

# hello KIND LISTENER EXPECT: one crafted hello against $ORG on LISTENER (starttls|direct).
hello() {
    local kind=$1 lst=$2 expect=$3 args=(--port "$PROXY_DIRECT_PORT") out
    [ "$lst" = starttls ] && args=(--port "$PROXY_STARTTLS_PORT" --starttls)
    out=$T/hello-$kind-$lst.out
    "$PY" "$LIB_DIR/tlsattack.py" hello "$kind" "${args[@]}" --domain "$ORG" --expect "$expect" \
        >"$out" 2>&1 || fail "$kind over $lst: expected $expect: $(cat "$out")"
    log "$lst $(sed 's/^tlsattack: RESULT hello //' "$out")"
}

# 1. Controls: a sound TLS 1.2 and TLS 1.3 hello get a ServerHello (then we hang up).
attack_mark
for lst in direct starttls; do
    hello good-tls12 "$lst" accepted
    hello good-tls13 "$lst" accepted
done
expect_closes 4 'peer-eof'

# 2. Crafted downgrades: refused, one close line each naming the TLS failure. Twice: the first
# round warms the allocator up, the second must not make the proxy grow.
for round in 1 2; do
    [ "$round" = 2 ] && rss0=$(rss_kib)
    attack_mark
    n=0
    for lst in direct starttls; do
        for kind in sslv2 sslv3 tls10 tls11 tls12-rc4 tls12-null tls12-anon tls12-export \
            tls12-cbc tls12-static-rsa tls12-dhe tls13-ffdhe; do
            hello "$kind" "$lst" refused
            n=$((n + 1))
        done
    done
    expect_closes "$n" 'tls-error' 'error=ETLS'
done

# 3. The same families from OpenSSL itself, with its own security floor lowered so that the
# offer really leaves (a local refusal would prove nothing).
sc() { # NAME LISTENER ARGS...
    local name=$1 lst=$2 out=$T/sc-$1-$2.out
    shift 2
    if [ "$lst" = starttls ]; then
        set -- -connect "127.0.0.1:$PROXY_STARTTLS_PORT" -starttls xmpp -xmpphost "$ORG" "$@"
    else
        set -- -connect "127.0.0.1:$PROXY_DIRECT_PORT" -alpn xmpp-client "$@"
    fi
    if s_client "$out" -servername "$ORG" -CAfile "$CA" "$@" ||
        grep -Eq '^New, TLSv1\.[0-3], Cipher is [A-Z0-9]' "$out"; then
        fail "s_client $name over $lst was accepted: $(grep -E '^New' "$out")"
    fi
    if grep -Eqi 'no protocols available|no ciphers available|no cipher match|no suitable' "$out"; then
        fail "s_client $name: OpenSSL refused locally: $(grep -Ei 'no (protocols|cipher|suitable)' "$out" | head -1)"
    fi
    grep -q '^CONNECTED' "$out" || fail "s_client $name over $lst did not connect: $(tail -n 3 "$out")"
    log "s_client $name over $lst refused: $(grep -Eio 'alert [a-z ]+|error:[0-9A-F]+:[^:]*:[^:]*:[^:]*' "$out" | head -1)"
}
attack_mark
n=0
for lst in direct starttls; do
    sc tls1.0 "$lst" -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
    sc anon "$lst" -tls1_2 -cipher 'aNULL:@SECLEVEL=0'
    sc null "$lst" -tls1_2 -cipher 'eNULL:@SECLEVEL=0'
    sc dhe "$lst" -tls1_2 -cipher 'DHE-RSA-AES128-GCM-SHA256:DHE-RSA-CHACHA20-POLY1305:@SECLEVEL=0'
    sc ffdhe "$lst" -tls1_3 -groups ffdhe2048:ffdhe3072:ffdhe4096
    n=$((n + 5))
done
sc tls1.1 direct -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'
n=$((n + 1))
expect_closes "$n" 'tls-error' 'error=ETLS'

[ "$(recorder_conns)" = 0 ] || fail "the attacked domain's backend saw $(recorder_conns) connections"
rss_check "after the second round and s_client's $n" "$rss0" 1024
proxy_alive || fail "the proxy died"
stop_guard
[ "$(jabberd2_connects)" = 1 ] || fail "jabberd2 saw $(jabberd2_connects) connections, expected the guard's only"
pass
