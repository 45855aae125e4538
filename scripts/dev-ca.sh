#!/usr/bin/env bash
# A development certificate authority and the certificates the services use with it, for
# docker-compose and the TLS tests. Never for production: keys are unencrypted and live beside
# their certificates. Keys are 0600 for the user who runs this; compose's containers read them as
# `node` (uid 1000): `chown 1000 DIR/*-key.pem` when that is not you (README, "TLS set-up").
#
#   scripts/dev-ca.sh DIR [HOSTNAME...]
#
# Writes into DIR (created): ca.pem/ca-key.pem (the CA), server.pem/server-key.pem
# (for every listener; names: localhost, 127.0.0.1, and each HOSTNAME given, e.g. the compose
# service names), client.pem/client-key.pem (a read replica's identity toward the write service,
# CN titanbot-read). Existing files are replaced.
set -euo pipefail
dir=${1:?usage: scripts/dev-ca.sh DIR [HOSTNAME...]}
shift
mkdir -p "$dir"
cd "$dir"

san="DNS:localhost,IP:127.0.0.1"
for host in "$@"; do san="$san,DNS:$host"; done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=Titanbot development CA" -keyout ca-key.pem -out ca.pem 2>/dev/null

issue() { # name CN extendedKeyUsage SAN
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
    -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=%s\n%s' "$3" "${4:+subjectAltName=$4}" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 825 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
issue server titanbot serverAuth "$san"
issue client titanbot-read clientAuth ""
rm -f ca.srl
chmod 644 ./*.pem
chmod 600 ./*-key.pem
echo "development CA and certificates in $(pwd)"
