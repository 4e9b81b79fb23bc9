#!/bin/sh
# Regenerates every certificate and key in this folder (README.md says what each file is for).
# The committed files are what the tests use; run this only to change the set, then commit the
# result. All are valid from 2024-01-01 for 20 years from the day they are made, except
# expired.example.test. Needs openssl.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
gen="$here/../../scripts/gen-certs.sh"
export DAYS=7300 START=20240101000000Z

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
cd "$here"
rm -f ./*.crt ./*.key

# The trusted test CA and the ordinary ECDSA P-256 leaves (serverAuth + clientAuth).
"$gen" . example.test example.org other.test

# RSA leaves for example.test: 2048 bits is accepted, 1024 bits must be refused.
KEY=rsa2048 NAME=rsa2048.example.test "$gen" . example.test
KEY=rsa1024 NAME=rsa1024 "$gen" . example.test

# Expired long ago.
END=20210101000000Z START=20200101000000Z NAME=expired.example.test "$gen" . example.test

# A leaf for a name we never serve.
SAN=DNS:wrong.invalid NAME=wrong-name "$gen" . wrong.invalid

# other.test with serverAuth only, as Let's Encrypt issues since 2026: it must still be accepted
# as an s2s client certificate.
EKU=serverAuth SAN=DNS:other.test NAME=serverauth-only.other.test "$gen" . other.test

# other.test identified only by XMPP otherName SANs (RFC 6120 §13.7.1.4): SRVName (RFC 4985,
# id-on-dnsSRV 1.3.6.1.5.5.7.8.7, IA5String) and XmppAddr (id-on-xmppAddr 1.3.6.1.5.5.7.8.5,
# UTF8String). No DNS-ID, so a verifier can only match through these.
SAN='otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-server.other.test, otherName:1.3.6.1.5.5.7.8.5;UTF8:other.test' \
    NAME=xmpp-ids.other.test "$gen" . other.test

# A second, unrelated CA and a leaf for example.test signed by it: well-formed but untrusted.
CA_CN="untrusted test CA" "$gen" "$tmp" example.test
mv "$tmp/ca.crt" untrusted-ca.crt
mv "$tmp/ca.key" untrusted-ca.key
mv "$tmp/example.test.crt" untrusted.example.test.crt
mv "$tmp/example.test.key" untrusted.example.test.key

# Identity edge cases for verify.c (RFC 6125 / RFC 9525, RFC 6120 §13.7.1.4):
# a wildcard-only leaf: *.wild.test covers a.wild.test, never wild.test itself (its CN).
SAN='DNS:*.wild.test' NAME=wildcard.wild.test "$gen" . wild.test
# other.test named only by an SRV-ID for Direct TLS (_xmpps-server, XEP-0368).
SAN='otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpps-server.other.test' NAME=srv-id.other.test \
    "$gen" . other.test
# other.test named only by an XmppAddr.
SAN='otherName:1.3.6.1.5.5.7.8.5;UTF8:other.test' NAME=xmppaddr.other.test "$gen" . other.test
# CN=other.test but no identifier that names the server other.test: an unrelated DNS-ID, the
# client SRV-ID and a user's XmppAddr. Verifiers must refuse it (no CN fallback, RFC 9525).
near='DNS:unrelated.invalid, otherName:1.3.6.1.5.5.7.8.7;IA5STRING:_xmpp-client.other.test'
near="$near, otherName:1.3.6.1.5.5.7.8.5;UTF8:user@other.test"
SAN=$near NAME=near-miss.other.test "$gen" . other.test

# Git keeps no permissions but the executable bit: these are throwaway test keys.
chmod 644 ./*.key
echo "$0: done" >&2
