#!/bin/sh
# Create a test CA and leaf certificates with openssl, for tests and demos. Never for production.
#
# Usage: scripts/gen-certs.sh OUTDIR DOMAIN [DOMAIN...]
#
# In OUTDIR: ca.crt and ca.key (ECDSA P-256 test CA), created only if ca.crt or ca.key is missing;
# then for each DOMAIN a fresh DOMAIN.key (ECDSA P-256) and DOMAIN.crt signed by that CA, with
# subjectAltName DNS:DOMAIN and DNS:*.DOMAIN and extendedKeyUsage serverAuth + clientAuth (a
# server certificate that can also authenticate outbound s2s, RFC 7590 / XEP-0178). Keys are
# unencrypted PKCS#8 PEM.
#
# Environment (all optional; tests/certs/gen.sh uses them for its special cases):
#   DAYS   validity in days from now (default 3650 = 10 years; a new CA gets a year more)
#   START  notBefore as YYYYMMDDHHMMSSZ (default: one day ago, so clock skew does not matter)
#   END    notAfter as YYYYMMDDHHMMSSZ for the leaves (overrides DAYS; e.g. an expired leaf)
#   CA_CN  common name of a new CA (default "xmpp-tls-proxy test CA")
#   KEY    leaf key: ec (P-256, default) or rsaBITS (rsa2048, rsa1024, ...)
#   EKU    leaf extendedKeyUsage (default "serverAuth, clientAuth")
#   SAN    leaf subjectAltName (default "DNS:DOMAIN, DNS:*.DOMAIN")
#   NAME   base name of the leaf files instead of DOMAIN (only with a single DOMAIN)
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 OUTDIR DOMAIN [DOMAIN...]" >&2
    exit 2
fi
command -v openssl >/dev/null 2>&1 || {
    echo "$0: openssl not found" >&2
    exit 1
}

out=$1
shift
days=${DAYS:-3650}
ca_cn=${CA_CN:-xmpp-tls-proxy test CA}
keyalg=${KEY:-ec}
eku=${EKU:-serverAuth, clientAuth}
case "$days" in
'' | *[!0-9]*)
    echo "$0: DAYS must be a number of days" >&2
    exit 2
    ;;
esac
if [ -n "${NAME:-}" ] && [ $# -ne 1 ]; then
    echo "$0: NAME needs exactly one DOMAIN" >&2
    exit 2
fi
start=${START:-$(date -u -d '1 day ago' +%Y%m%d%H%M%SZ 2>/dev/null || true)}

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

newkey() { # newkey FILE ALG: unencrypted PKCS#8 PEM, readable by the owner only
    case "$2" in
    ec) (umask 077 && openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$1") ;;
    rsa[0-9]*) (umask 077 && openssl genpkey -quiet -algorithm RSA \
        -pkeyopt "rsa_keygen_bits:${2#rsa}" -out "$1") ;;
    *)
        echo "$0: KEY must be ec or rsaBITS, not $2" >&2
        exit 2
        ;;
    esac
}

# openssl ca, unlike openssl x509 -req, can set notBefore; it wants a database and a serial file.
mkdir "$tmp/db"
: >"$tmp/db/index.txt"
cat >"$tmp/ca.cnf" <<EOF
[ca]
default_ca = test
[test]
database = $tmp/db/index.txt
serial = $tmp/db/serial
new_certs_dir = $tmp/db
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
EOF

# sign CSR OUT EXTFILE DAYS [selfsign-key]: one certificate with a random positive serial.
sign() {
    echo "7F$(openssl rand -hex 15)" >"$tmp/db/serial"
    csr=$1 crt=$2 ext=$3 d=$4
    if [ $# -ge 5 ]; then
        set -- -selfsign -keyfile "$5"
    else
        set -- -cert "$out/ca.crt" -keyfile "$out/ca.key"
    fi
    if [ -n "$start" ]; then
        set -- "$@" -startdate "$start"
    fi
    if [ -n "${END:-}" ] && [ "$crt" != "$out/ca.crt" ]; then
        set -- "$@" -enddate "$END"
    else
        set -- "$@" -days "$d"
    fi
    openssl ca -batch -notext -config "$tmp/ca.cnf" "$@" -extfile "$ext" -in "$csr" \
        -out "$crt" 2>"$tmp/ca.log" || {
        cat "$tmp/ca.log" >&2
        exit 1
    }
}

if [ ! -f "$out/ca.crt" ] || [ ! -f "$out/ca.key" ]; then
    newkey "$out/ca.key" ec
    cat >"$tmp/ca-ext.cnf" <<EOF
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
    openssl req -new -key "$out/ca.key" -subj "/CN=$ca_cn" -out "$tmp/ca.csr"
    sign "$tmp/ca.csr" "$out/ca.crt" "$tmp/ca-ext.cnf" $((days + 365)) "$out/ca.key"
    echo "$0: created CA $out/ca.crt" >&2
fi

for domain in "$@"; do
    case "$domain" in
    '' | */* | *[!A-Za-z0-9.-]*)
        echo "$0: not a domain name: $domain" >&2
        exit 2
        ;;
    esac
    name=${NAME:-$domain}
    newkey "$out/$name.key" "$keyalg"
    cat >"$tmp/ext.cnf" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $eku
subjectAltName = ${SAN:-DNS:$domain, DNS:*.$domain}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl req -new -key "$out/$name.key" -subj "/CN=$domain" -out "$tmp/leaf.csr"
    sign "$tmp/leaf.csr" "$out/$name.crt" "$tmp/ext.cnf" "$days"
    echo "$0: created $out/$name.crt" >&2
done
