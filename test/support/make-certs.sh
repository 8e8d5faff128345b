#!/usr/bin/env bash
# Make a throwaway PKI for the TLS tests in DIR (valid for two days):
#   ca.pem            the CA that signed everything below
#   server.{pem,key}  RabbitMQ's certificate, for localhost and 127.0.0.1
#   client.{pem,key}  a client certificate whose common name is CLIENT_CN (EXTERNAL login)
#   client_encrypted.key  the client key under a passphrase (which the plugin must refuse)
#   other_ca.pem      a CA that signed nothing here: trusting only it must fail
#   make-certs.sh DIR CLIENT_CN
set -euo pipefail

dir=$1
client_cn=$2
mkdir -p "$dir"
cd "$dir"

# EC keys: quick to make on a slow machine, and every TLS 1.2/1.3 peer supports P-256.
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2> /dev/null; }

ca() {
    key "$1"
    openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days 2 -out "$1.pem" 2> /dev/null
}

# leaf NAME CN EXTENSIONS: a certificate signed by ca.pem
leaf() {
    key "$1"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2> /dev/null
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" \
        -out "$1.pem" 2> /dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "emqx_rabbitmq_hook test CA"
ca other_ca "emqx_rabbitmq_hook other CA"
leaf server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf client "$client_cn" "extendedKeyUsage=clientAuth"
openssl pkey -in client.key -aes-256-cbc -passout pass:test-only -out client_encrypted.key
chmod 600 ./*.key
