#!/usr/bin/env bash
# Writes a throwaway test PKI into DIR with openssl: a CA, a server certificate for localhost /
# 127.0.0.1 and a client certificate signed by it, and a second, unrelated CA with a client
# certificate of its own (for the refusals). EC P-256 keys, valid for two days. The TLS tests
# run this at test time; nothing here is ever committed.
#   tests/server/make_test_certs.sh DIR
set -euo pipefail
dir=${1:?usage: make_test_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

make_ca() {  # NAME CN
  openssl req -x509 "${curve[@]}" -keyout "$1.key" -out "$1.pem" -days 2 -subj "/CN=$2" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}

sign() {  # NAME CA CN EXTENSIONS
  openssl req "${curve[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$3" 2>/dev/null
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -out "$1.pem" \
    -days 2 -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

make_ca ca "ropewire test CA"
sign server ca localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
sign client ca "ropewire test client" "extendedKeyUsage=clientAuth"
make_ca other_ca "some other CA"
sign other_client other_ca "stranger" "extendedKeyUsage=clientAuth"
echo "test PKI in $dir"
