#!/usr/bin/env bash
# Generates the cluster PKI with openssl (ECDSA P-256: fast) and the kubeconfigs, into $PKI / $STATE.
# Idempotent: keeps what exists. Usage: hack/cluster/pki.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$PKI"; chmod 0700 "$PKI"
cd "$PKI"

newkey() { [ -f "$1.key" ] || openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; chmod 0600 "$1.key"; }

if [ ! -f ca.crt ]; then
  newkey ca
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=mlops-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.crt 2>/dev/null
fi

# cert NAME SUBJECT EXTKEYUSAGE [SAN]
cert() {
  local name=$1 subj=$2 eku=$3 san=${4:-}
  [ -f "$name.crt" ] && return 0
  newkey "$name"
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$ext"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 3650 \
    -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$NODE_IP,IP:$API_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE_NAME"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=kubernetes-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet "/CN=$NODE_NAME" serverAuth "IP:$NODE_IP,IP:127.0.0.1,DNS:$NODE_NAME,DNS:localhost"
if [ ! -f sa.key ]; then
  newkey sa
  openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null
fi
rm -f ca.srl

# kubeconfig NAME CERT SERVER
kubeconfig() {
  local out=$STATE/$1.kubeconfig cert=$2 server=$3
  [ -f "$out" ] && return 0
  cat > "$out" <<KC
apiVersion: v1
kind: Config
clusters:
- name: mlops-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$cert.crt")
    client-key-data: $(base64 -w0 "$cert.key")
contexts:
- name: mlops-local
  context: {cluster: mlops-local, user: $1}
current-context: mlops-local
KC
  chmod 0600 "$out"
}
SERVER=https://$NODE_IP:$API_PORT
kubeconfig admin admin "$SERVER"
kubeconfig controller-manager controller-manager "$SERVER"
kubeconfig scheduler scheduler "$SERVER"
kubeconfig kube-proxy kube-proxy "$SERVER"
kubeconfig kubelet kubelet-client "$SERVER"
