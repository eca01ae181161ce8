#!/bin/sh
# Throwaway certificates for docker-compose.tls.yml (docs/durability.md, TLS):
#   scripts/make_certs.sh [DIR]        # default ./certs, the directory the overlay mounts
# One CA and one certificate whose names cover every name a client dials in compose (the gRPC
# services, the Kafka broker, and localhost / 127.0.0.1 for the health checks); every process
# uses it as its server and its client certificate. For a real deployment use a certificate
# per service from your own CA.
#   ca.crt, ca.key               the CA (keep ca.key away from the containers)
#   server.crt, server.key       PEM certificate and unencrypted PKCS#8 key: gRPC (FORYOU_TLS_*)
#                                and the foryou Kafka clients (FORYOU_KAFKA_SSL_*)
#   kafka.pem                    the broker's PEM keystore: the same key, encrypted (Kafka reads a
#                                PEM key file only encrypted, with ssl.key.password), then server.crt
#   kafka-client.properties      for Kafka's own command-line tools (health check, topic creation)
set -eu
dir=${1:-certs}
# Kafka needs a key password for a PEM key file; the key sits next to it, so it protects nothing
# more here. docker-compose.tls.yml passes the same value (KAFKA_SSL_KEY_PASSWORD).
key_password=foryou-compose
names="DNS:thunder,DNS:phoenix,DNS:home-mixer,DNS:kafka,DNS:localhost,IP:127.0.0.1"

mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
  -subj "/CN=foryou compose CA" -keyout ca.key -out ca.crt 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=foryou" -keyout server.key -out server.csr 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
  "$names" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
  -extfile server.ext -out server.crt 2>/dev/null
# PBE-SHA1-3DES: a PKCS#8 encryption every Java runtime decrypts
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in server.key -passout "pass:$key_password" > kafka.pem
cat server.crt >> kafka.pem
cat > kafka-client.properties <<EOF
security.protocol=SSL
ssl.truststore.type=PEM
ssl.truststore.location=/certs/ca.crt
ssl.keystore.type=PEM
ssl.keystore.location=/certs/kafka.pem
ssl.key.password=$key_password
EOF
rm -f server.csr server.ext ca.srl
# the containers run as other users than the one who made the files
chmod 644 server.key kafka.pem
echo "wrote $(pwd): ca.crt server.crt server.key kafka.pem kafka-client.properties"
