# shellcheck shell=bash
# Certificate helpers (openssl) for local clusters. Source after common.sh.
#
#   pki_ensure_ca DIR
#       DIR/ca.crt + DIR/ca.key: a self-signed CA, created once and reused.
#   pki_ensure_cert DIR NAME (--server | --client) --cn CN [--org O]... [--san SAN]...
#       DIR/NAME.crt + DIR/NAME.key signed by DIR/ca. Reused while it exists,
#       is signed by the current CA and is valid for at least another day.
#       SANs are written as openssl wants them: DNS:name or IP:addr.
#   pki_ensure_keypair DIR NAME
#       DIR/NAME.key + DIR/NAME.pub: a bare RSA key pair (service accounts).
#
# Keys are RSA 2048 in PKCS#8 PEM, readable only by their owner.

PKI_CA_DAYS="${PKI_CA_DAYS:-3650}"
PKI_CERT_DAYS="${PKI_CERT_DAYS:-825}"

_pki_genkey() {
  (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$1" 2>/dev/null) || die "openssl: could not generate key $1"
}

pki_ensure_ca() {
  local dir="$1"
  mkdir -p "$dir"
  if [[ -s "${dir}/ca.crt" && -s "${dir}/ca.key" ]] &&
    openssl x509 -in "${dir}/ca.crt" -noout -checkend 86400 >/dev/null 2>&1; then
    return 0
  fi
  log "generating CA in ${dir}"
  local cnf
  cnf="$(mktemp)"
  cat >"$cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = local-kubernetes-ca
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyEncipherment, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
  _pki_genkey "${dir}/ca.key"
  if ! openssl req -x509 -new -sha256 -key "${dir}/ca.key" -config "$cnf" \
    -extensions v3_ca -days "$PKI_CA_DAYS" -out "${dir}/ca.crt" 2>"${cnf}.err"; then
    cat "${cnf}.err" >&2
    rm -f "$cnf" "${cnf}.err"
    die "openssl: could not create CA certificate"
  fi
  rm -f "$cnf" "${cnf}.err"
  # Certificates signed by an older CA are no longer valid: the next
  # pki_ensure_cert call sees that (openssl verify) and reissues them.
}

pki_ensure_cert() {
  local dir="$1" name="$2"
  shift 2
  local kind="" cn="" subj="" san=""
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --server) kind=serverAuth; shift ;;
      --client) kind=clientAuth; shift ;;
      --cn) cn="$2"; shift 2 ;;
      --org) subj+="/O=$2"; shift 2 ;;
      --san) san+="${san:+, }$2"; shift 2 ;;
      *) die "pki_ensure_cert: unknown argument $1" ;;
    esac
  done
  [[ -n "$kind" ]] || die "pki_ensure_cert ${name}: need --server or --client"
  [[ -n "$cn" ]] || die "pki_ensure_cert ${name}: need --cn"
  subj+="/CN=${cn}"

  local crt="${dir}/${name}.crt" key="${dir}/${name}.key"
  if [[ -s "$crt" && -s "$key" ]] &&
    openssl verify -CAfile "${dir}/ca.crt" "$crt" >/dev/null 2>&1 &&
    openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null 2>&1; then
    return 0
  fi
  log "issuing certificate ${name} (${kind}, ${subj})"

  local cnf
  cnf="$(mktemp)"
  {
    echo "[v3_leaf]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    echo "extendedKeyUsage = ${kind}"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid, issuer"
    if [[ -n "$san" ]]; then echo "subjectAltName = ${san}"; fi
  } >"$cnf"

  _pki_genkey "$key"
  if ! openssl req -new -key "$key" -subj "$subj" -out "${cnf}.csr" 2>"${cnf}.err" ||
    ! openssl x509 -req -sha256 -in "${cnf}.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days "$PKI_CERT_DAYS" \
      -extfile "$cnf" -extensions v3_leaf -out "$crt" 2>>"${cnf}.err"; then
    cat "${cnf}.err" >&2
    rm -f "$cnf" "${cnf}.csr" "${cnf}.err"
    die "openssl: could not issue certificate ${name}"
  fi
  rm -f "$cnf" "${cnf}.csr" "${cnf}.err"
}

pki_ensure_keypair() {
  local dir="$1" name="$2"
  if [[ -s "${dir}/${name}.key" && -s "${dir}/${name}.pub" ]]; then
    return 0
  fi
  log "generating key pair ${name}"
  _pki_genkey "${dir}/${name}.key"
  openssl pkey -in "${dir}/${name}.key" -pubout -out "${dir}/${name}.pub" 2>/dev/null ||
    die "openssl: could not write public key ${dir}/${name}.pub"
}
