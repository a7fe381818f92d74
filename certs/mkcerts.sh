#!/usr/bin/env bash
# Create a CA, server certificates and partner client certificates for otpgate with openssl.
# Private keys are written with mode 0600 and must never be committed.
#
#   certs/mkcerts.sh ca      DIR                      # DIR/ca.pem, DIR/ca-key.pem (EC P-256, 10 years)
#   certs/mkcerts.sh server  DIR NAME [SAN...]        # DIR/NAME.pem, DIR/NAME-key.pem signed by DIR/ca.pem
#   certs/mkcerts.sh partner DIR PARTNER_ID [DAYS]    # client cert, CN=PARTNER_ID, clientAuth only
#   certs/mkcerts.sh revoke  DIR CERT.pem             # add CERT to DIR/crl.pem (CRL file for the policy)
#   certs/mkcerts.sh pin     CERT.pem                 # SPKI SHA-256 pin (base64) for the partner policy
set -euo pipefail

cmd=${1:-}; shift || true
umask 077

ca_db() { # minimal openssl ca database, for CRLs
  local dir=$1
  mkdir -p "$dir/.ca"
  [ -f "$dir/.ca/index.txt" ] || : > "$dir/.ca/index.txt"
  [ -f "$dir/.ca/crlnumber" ] || echo 1000 > "$dir/.ca/crlnumber"
  cat > "$dir/.ca/openssl.cnf" <<CNF
[ ca ]
default_ca = otpgate
[ otpgate ]
database = $dir/.ca/index.txt
crlnumber = $dir/.ca/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca-key.pem
default_md = sha256
default_crl_days = 30
CNF
}

case "$cmd" in
  ca)
    dir=$1; mkdir -p "$dir"
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca-key.pem"
    openssl req -x509 -new -key "$dir/ca-key.pem" -sha256 -days 3650 -subj "/O=otpgate/CN=otpgate partner CA" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$dir/ca.pem"
    chmod 644 "$dir/ca.pem"; echo "$dir/ca.pem"
    ;;
  server|partner)
    dir=$1; name=$2; shift 2
    if [ "$cmd" = server ]; then
      sans="DNS:$name"; for s in "$@"; do case "$s" in *[!0-9.:a-fA-F]*) sans="$sans,DNS:$s";; *) sans="$sans,IP:$s";; esac; done
      ext="subjectAltName=$sans
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
      days=825
    else
      ext="extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
      days=${1:-365}
    fi
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/$name-key.pem"
    openssl req -new -key "$dir/$name-key.pem" -subj "/O=otpgate/CN=$name" -out "$dir/$name.csr"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -CAcreateserial \
      -days "$days" -sha256 -extfile <(printf '%s\n' "$ext") -out "$dir/$name.pem"
    rm -f "$dir/$name.csr"; chmod 644 "$dir/$name.pem"; echo "$dir/$name.pem"
    ;;
  revoke)
    dir=$1; cert=$2; ca_db "$dir"
    openssl ca -config "$dir/.ca/openssl.cnf" -revoke "$cert" 2>/dev/null
    openssl ca -config "$dir/.ca/openssl.cnf" -gencrl -out "$dir/crl.pem" 2>/dev/null
    chmod 644 "$dir/crl.pem"; echo "$dir/crl.pem"
    ;;
  pin)
    openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64
    ;;
  *)
    sed -n '2,9p' "$0"; exit 2
    ;;
esac
