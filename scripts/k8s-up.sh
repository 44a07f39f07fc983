#!/usr/bin/env bash
# Starts a real Kubernetes control plane for the tests, all on 127.0.0.1:
# etcd (embedded), kube-apiserver, kube-controller-manager, kube-scheduler,
# and the node agent that runs pods as local processes (tests/k8s/node; it
# needs root). Builds what is missing first (scripts/k8s-build.sh). Returns
# once the API server is ready, the controllers work and every node is Ready,
# leaving the servers running.
#
# Usage: scripts/k8s-up.sh [DIR]
#
# DIR (default: a new /tmp/atc-k8s.XXXXXX) receives the certificates, the
# kubeconfigs, etcd's data, each server's log and pid file, bin/ (kubectl,
# helm, kube) and env (shell assignments: KUBECONFIG, KUBECTL, HELM, ...).
# The last line on stdout is the admin kubeconfig's path; everything else goes
# to stderr. scripts/k8s-down.sh DIR stops it all and removes DIR.
#
# Environment:
#   ATC_K8S_NODES_CONFIG  nodes.yaml for the node agent (default tests/k8s/node/nodes.yaml)
#   ATC_K8S_NO_NODE=1     neither build nor start the node agent
#   ATC_K8S_TIMEOUT       seconds to wait for each part to become ready (default 120)
#   ATC_K8S_ATC_BINARY    the atc binary pods of image atc.test/atc:TAG run (tests/cluster sets it)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
timeout=${ATC_K8S_TIMEOUT:-120}
say() { echo "k8s-up: $*" >&2; }
started_at=$SECONDS

dir=${1:-}
if [ -z "$dir" ]; then
  dir=$(mktemp -d /tmp/atc-k8s.XXXXXX)
else
  mkdir -p "$dir"
  if [ -n "$(ls -A "$dir")" ]; then
    say "$dir is not empty: run scripts/k8s-down.sh $dir first, or give a new directory"
    exit 1
  fi
fi
dir=$(cd "$dir" && pwd)
# k8s-down.sh deletes only a directory that carries this mark.
echo "made by scripts/k8s-up.sh; scripts/k8s-down.sh $dir removes it" >"$dir/.atc-k8s"

# Build (or find in the cache) the binaries.
targets=(kube helm)
if [ "${ATC_K8S_NO_NODE:-}" != 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "the node agent needs root (mount namespaces, bind mounts, chroot): run as root, or set ATC_K8S_NO_NODE=1 for a cluster without nodes"
    rm -f "$dir/.atc-k8s"; rmdir "$dir" 2>/dev/null || true
    exit 1
  fi
  targets+=(process-node)
fi
built=$("$root/scripts/k8s-build.sh" "${targets[@]}") || {
  say "building the tools failed (above); nothing was started (scripts/k8s-down.sh $dir removes $dir)"
  exit 1
}
eval "$built"
KUBE=${KUBE:?} HELM=${HELM:?} PROCESS_NODE=${PROCESS_NODE:-}

mkdir -p "$dir/pki" "$dir/bin" "$dir/etcd"
ln -s "$KUBE" "$dir/bin/kube"
ln -s "$KUBE" "$dir/bin/kubectl"
ln -s "$HELM" "$dir/bin/helm"
[ -z "$PROCESS_NODE" ] || ln -s "$PROCESS_NODE" "$dir/bin/process-node"

# If anything below fails, stop what was started; keep DIR for its logs.
cleanup_on_failure() {
  local status=$?
  if [ "$status" -ne 0 ]; then
    say "start-up failed; stopping what was started (logs stay in $dir)"
    "$root/scripts/k8s-down.sh" --keep "$dir" >&2 || true
  fi
}
trap cleanup_on_failure EXIT

# ---------------------------------------------------------------------------
# Certificates and keys (openssl, ECDSA P-256: quick to make, accepted
# everywhere here). One CA signs the serving certs and the client certs; the
# front proxy has a CA of its own.
pki=$dir/pki
service_cidr=10.96.0.0/24
service_ip=10.96.0.1 # the first address: the `kubernetes` Service

ossl() { openssl "$@" 2>>"$pki/openssl.log"; }
# ca NAME CN: a self-signed CA.
ca() {
  ossl ecparam -name prime256v1 -genkey -noout -out "$pki/$1.key"
  ossl req -x509 -new -key "$pki/$1.key" -sha256 -days 30 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/$1.crt"
}
ca ca atc-test-ca
# The front proxy's CA is separate, as on a real cluster: a client cert from
# it may assert any user in request headers, so no other client gets one.
ca front-proxy-ca atc-test-front-proxy-ca

# cert NAME SUBJECT USAGE [SANS] [CA]: a key and a certificate signed by CA
# (default: the cluster CA).
cert() {
  local name=$1 subject=$2 usage=$3 sans=${4:-} ca=${5:-ca}
  ossl ecparam -name prime256v1 -genkey -noout -out "$pki/$name.key"
  ossl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$pki/$name.ext"
  ossl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt"
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:$service_ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# The controller manager's and the scheduler's own HTTPS (health, metrics).
cert kube-serving "/CN=atc-test-control-plane" serverAuth "IP:127.0.0.1,DNS:localhost"
# The API server proxies to aggregated API servers with this one.
cert front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
cert admin "/O=system:masters/CN=atc-test-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
# The API server's client identity towards the kubelet API (logs, exec, attach).
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
# The node agent registers several nodes from one process, so it cannot be a
# single system:node:<name> under the Node authorizer: it gets an admin
# identity of its own.
cert node-agent "/O=system:masters/CN=atc-test-node-agent" clientAuth
# The node agent's kubelet API, which the API server dials at 127.0.0.1.
cert kubelet-serving "/CN=atc-test-kubelet" serverAuth "IP:127.0.0.1,DNS:localhost"
# Service-account tokens: the API server signs with the private key and
# verifies with the public one; the token controller signs legacy tokens.
ossl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key"
ossl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub"
chmod 600 "$pki"/*.key

# ---------------------------------------------------------------------------
# Ports: all free TCP ports on 127.0.0.1, chosen together.
ports=$("$KUBE" free-ports 6)
mapfile -t ports <<<"$ports"
etcd_client_port=${ports[0]} etcd_peer_port=${ports[1]} api_port=${ports[2]}
cm_port=${ports[3]} scheduler_port=${ports[4]} kubelet_port=${ports[5]}
server=https://127.0.0.1:$api_port

# kubeconfig NAME USER: a kubeconfig for one client certificate.
kubeconfig() {
  local name=$1 user=$2
  cat >"$dir/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: atc-test
  cluster:
    server: $server
    certificate-authority: $pki/ca.crt
users:
- name: $user
  user:
    client-certificate: $pki/$name.crt
    client-key: $pki/$name.key
contexts:
- name: atc-test
  context: {cluster: atc-test, user: $user}
current-context: atc-test
EOF
}
kubeconfig admin atc-test-admin
kubeconfig controller-manager system:kube-controller-manager
kubeconfig scheduler system:kube-scheduler
kubeconfig node-agent atc-test-node-agent

# ---------------------------------------------------------------------------
# Processes. Each runs in its own session (so a terminal's Ctrl-C does not
# reach it), logs to DIR/NAME.log and has its pid in DIR/NAME.pid.
start() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid"
  say "started $name (pid $!, log $dir/$name.log)"
}

alive() { kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

# wait_for NAME WHAT COMMAND...: polls COMMAND until it succeeds, failing
# early if NAME's process has exited, and at the deadline.
wait_for() {
  local name=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout)) start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then
      say "$name exited before $what; the end of $dir/$name.log:"
      tail -n 30 "$dir/$name.log" | sed 's/^/  /' >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$what: not after ${timeout}s; the end of $dir/$name.log:"
      tail -n 30 "$dir/$name.log" | sed 's/^/  /' >&2
      return 1
    fi
    sleep 0.2
  done
  say "$what ($((SECONDS - start))s)"
}

admin_curl() {
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$server$1"
}
kubectl() { "$KUBE" kubectl --kubeconfig "$dir/admin.kubeconfig" "$@"; }

start etcd "$KUBE" etcd --data-dir "$dir/etcd" \
  --listen-client-url "http://127.0.0.1:$etcd_client_port" \
  --listen-peer-url "http://127.0.0.1:$etcd_peer_port"
wait_for etcd "etcd is ready" curl -fsS --max-time 5 "http://127.0.0.1:$etcd_client_port/health"

start apiserver "$KUBE" apiserver \
  --etcd-servers "http://127.0.0.1:$etcd_client_port" \
  --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --client-ca-file "$pki/ca.crt" \
  --authorization-mode Node,RBAC \
  --enable-admission-plugins NodeRestriction \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" \
  --service-account-signing-key-file "$pki/sa.key" \
  --service-cluster-ip-range "$service_cidr" \
  --endpoint-reconciler-type none \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$pki/ca.crt" \
  --kubelet-preferred-address-types InternalIP \
  --requestheader-client-ca-file "$pki/front-proxy-ca.crt" \
  --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User \
  --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" \
  --proxy-client-key-file "$pki/front-proxy-client.key" \
  --allow-privileged=true \
  --profiling=false
wait_for apiserver "kube-apiserver is ready" admin_curl /readyz

# --node-monitor-period 1s: a node that turns NotReady is tainted within a
# second (5 s by default), so the node-loss checks take seconds.
start controller-manager "$KUBE" controller-manager \
  --kubeconfig "$dir/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$cm_port" \
  --tls-cert-file "$pki/kube-serving.crt" --tls-private-key-file "$pki/kube-serving.key" \
  --leader-elect=false \
  --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" \
  --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --controllers '*' \
  --node-monitor-period 1s \
  --profiling=false
start scheduler "$KUBE" scheduler \
  --kubeconfig "$dir/scheduler.kubeconfig" \
  --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
  --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$scheduler_port" \
  --tls-cert-file "$pki/kube-serving.crt" --tls-private-key-file "$pki/kube-serving.key" \
  --leader-elect=false \
  --profiling=false
wait_for controller-manager "kube-controller-manager is healthy" \
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" "https://127.0.0.1:$cm_port/healthz"
wait_for scheduler "kube-scheduler is healthy" \
  curl -fsS --max-time 5 --cacert "$pki/ca.crt" "https://127.0.0.1:$scheduler_port/healthz"
# The controllers are working once the service-account controller has made
# `default` in the default namespace (pods cannot be created without it).
wait_for controller-manager "the controllers run (serviceaccount default/default exists)" \
  kubectl get serviceaccount default --namespace default

if [ -n "$PROCESS_NODE" ] && [ "${ATC_K8S_NO_NODE:-}" != 1 ]; then
  nodes_config=${ATC_K8S_NODES_CONFIG:-$root/tests/k8s/node/nodes.yaml}
  # The agent's image map runs kubectl's image with the cluster's own
  # kubectl, and atc's image with $ATC_K8S_ATC_BINARY (when the caller sets
  # it). Pods may run as a non-root uid (the Helm chart's do), which cannot
  # reach into /root, so both are linked (or copied) into a directory any
  # uid can read, as an image holds its programs; not below /tmp, where
  # pods mount emptyDirs of their own (k8s-down.sh removes it).
  images=$(mktemp -d /var/tmp/atc-k8s-images.XXXXXX)
  echo "$images" >"$dir/images-dir"
  chmod 0755 "$images"
  ln -f "$KUBE" "$images/kube" 2>/dev/null || cp "$KUBE" "$images/kube"
  atc_binary=
  if [ -n "${ATC_K8S_ATC_BINARY:-}" ]; then
    ln -f "$ATC_K8S_ATC_BINARY" "$images/atc" 2>/dev/null || cp "$ATC_K8S_ATC_BINARY" "$images/atc"
    atc_binary="$images/atc"
  fi
  start node env ATC_K8S_KUBE="$images/kube" ATC_K8S_ATC_BINARY="$atc_binary" "$PROCESS_NODE" \
    --kubeconfig "$dir/node-agent.kubeconfig" \
    --config "$nodes_config" \
    --listen "127.0.0.1:$kubelet_port" \
    --tls-cert "$pki/kubelet-serving.crt" --tls-key "$pki/kubelet-serving.key" \
    --client-ca "$pki/ca.crt" \
    --state-dir "$dir/node"
  # Ready once every node it registers reports Ready (at least one node).
  nodes_ready() {
    local out
    out=$(kubectl get nodes -o 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
    [ -n "$out" ] && ! grep -qv '^True$' <<<"$out"
  }
  wait_for node "every node is Ready" nodes_ready
else
  say "no node agent started (PROCESS_NODE='${PROCESS_NODE}', ATC_K8S_NO_NODE='${ATC_K8S_NO_NODE:-}'): pods stay Pending"
fi

cat >"$dir/env" <<EOF
KUBECONFIG=$dir/admin.kubeconfig
KUBECTL=$dir/bin/kubectl
HELM=$dir/bin/helm
KUBE=$KUBE
PROCESS_NODE=$PROCESS_NODE
K8S_API_SERVER=$server
K8S_CA_FILE=$pki/ca.crt
K8S_DIR=$dir
EOF

trap - EXIT
say "ready in $((SECONDS - started_at))s; kubectl: KUBECONFIG=$dir/admin.kubeconfig $dir/bin/kubectl; stop: scripts/k8s-down.sh $dir"
echo "$dir/admin.kubeconfig"
