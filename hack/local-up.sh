#!/usr/bin/env bash
# Starts a local cluster from this checkout:
#   1. installs dependencies (hack/install-deps.sh)
#   2. adds the blackhole route for the Service CIDR (network safety)
#   3. builds kube-apiserver, kube-controller-manager and kube-scheduler
#      (cargo build --release)
#   4. creates certificates in _output/local/pki (once; reused afterwards)
#   5. starts etcd (unless it already runs) and (re)starts kube-apiserver,
#      kube-controller-manager and kube-scheduler
#   6. writes _output/local/kubeconfig and prints how to use it
#
# Re-running it keeps etcd and its data and restarts the other components with
# the new build. hack/local-down.sh stops everything.
#
# Usage: hack/local-up.sh [--skip-build]
# Environment: APISERVER_LOG_LEVEL (--v, default 2), APISERVER_EXTRA_ARGS,
#   APISERVER_READY_TIMEOUT (seconds, default 60), SERVICE_ACCOUNT_ISSUER,
#   CARGO_TARGET_DIR, and the ports/CIDR in hack/lib/cluster.sh.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=hack/lib/common.sh
source "${HACK_DIR}/lib/common.sh"
# shellcheck source=hack/lib/pki.sh
source "${HACK_DIR}/lib/pki.sh"
# shellcheck source=hack/lib/cluster.sh
source "${HACK_DIR}/lib/cluster.sh"
# shellcheck source=hack/lib/containerd.sh
source "${HACK_DIR}/lib/containerd.sh"

SKIP_BUILD="${SKIP_BUILD:-0}"
# The service account token issuer ("iss" of issued tokens, and the API audience).
SERVICE_ACCOUNT_ISSUER="${SERVICE_ACCOUNT_ISSUER:-https://kubernetes.default.svc.cluster.local}"

usage() {
  sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# --- steps --------------------------------------------------------------------

# Traffic to Service IPs must never leave this machine: there is no kube-proxy
# here, and addresses in 10.0.0.0/8 belong to other people's networks. The
# blackhole route makes the kernel drop such packets locally.
ensure_service_cidr_route() {
  if is_root; then
    ip route replace blackhole "$SERVICE_CIDR" ||
      die "could not add the blackhole route for the Service CIDR ${SERVICE_CIDR}"
  elif ip route show type blackhole 2>/dev/null | grep -qF "$SERVICE_CIDR"; then
    :
  else
    warn "not root: could not add 'ip route replace blackhole ${SERVICE_CIDR}'." \
      "Run it as root; until then Service IPs are not fenced off."
  fi
}

build() {
  if [[ "$SKIP_BUILD" == 1 ]]; then
    log "skipping build (--skip-build)"
    return 0
  fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler and kubelet (cargo build --release)"
  (cd "$REPO_ROOT" && cargo build --release -p apiserver -p controllers-controller-manager -p scheduler -p kubelet) ||
    die "cargo build failed"
}

# Prints the path of a binary built by cargo in release mode.
built_binary() {
  local target="${CARGO_TARGET_DIR:-target}"
  if [[ "$target" != /* ]]; then target="${REPO_ROOT}/${target}"; fi
  local bin="${target}/release/$1"
  [[ -x "$bin" ]] || die "${bin} not found; build it first (drop --skip-build)"
  echo "$bin"
}

ensure_certs() {
  pki_ensure_ca "$PKI_DIR"
  pki_ensure_cert "$PKI_DIR" apiserver --server --cn kube-apiserver \
    --san DNS:localhost --san IP:127.0.0.1 \
    --san DNS:kubernetes --san DNS:kubernetes.default \
    --san DNS:kubernetes.default.svc --san DNS:kubernetes.default.svc.cluster.local \
    --san "IP:${KUBERNETES_SERVICE_IP}"
  pki_ensure_cert "$PKI_DIR" admin --client --cn kubernetes-admin --org system:masters
  pki_ensure_cert "$PKI_DIR" controller-manager --client --cn system:kube-controller-manager
  pki_ensure_cert "$PKI_DIR" scheduler --client --cn system:kube-scheduler
  pki_ensure_cert "$PKI_DIR" kubelet --client --cn "system:node:${NODE_NAME}" --org system:nodes
  # The client certificate the apiserver presents to kubelets (logs, exec, port-forward).
  pki_ensure_cert "$PKI_DIR" apiserver-kubelet-client --client --cn kube-apiserver-kubelet-client --org system:masters
  # Service account token signing key (kube-apiserver --service-account-*-file).
  pki_ensure_keypair "$PKI_DIR" service-account
  write_kubeconfig "${CLUSTER_DIR}/controller-manager.kubeconfig" "$APISERVER_URL" "${PKI_DIR}/ca.crt" \
    "${PKI_DIR}/controller-manager.crt" "${PKI_DIR}/controller-manager.key" system:kube-controller-manager
  write_kubeconfig "${CLUSTER_DIR}/scheduler.kubeconfig" "$APISERVER_URL" "${PKI_DIR}/ca.crt" \
    "${PKI_DIR}/scheduler.crt" "${PKI_DIR}/scheduler.key" system:kube-scheduler
  write_kubeconfig "${CLUSTER_DIR}/kubelet.kubeconfig" "$APISERVER_URL" "${PKI_DIR}/ca.crt" \
    "${PKI_DIR}/kubelet.crt" "${PKI_DIR}/kubelet.key" "system:node:${NODE_NAME}"
}

# --- components: one start_NAME function each, in COMPONENTS order -------------

start_etcd() {
  if component_pid etcd >/dev/null; then
    wait_for_url --timeout 10 "${ETCD_URL}/health" ||
      die "etcd runs (pid $(component_pid etcd)) but is not healthy; see ${CLUSTER_DIR}/etcd.log"
    log "etcd already running"
    return 0
  fi
  if port_in_use "$ETCD_CLIENT_PORT"; then
    if wait_for_url --timeout 5 "${ETCD_URL}/health"; then
      warn "using an etcd on ${ETCD_URL} that local-up.sh did not start"
      return 0
    fi
    die "port ${ETCD_CLIENT_PORT} is taken by something that is not a healthy etcd"
  fi
  if port_in_use "$ETCD_PEER_PORT"; then
    die "etcd peer port ${ETCD_PEER_PORT} is already in use"
  fi

  log "starting etcd on ${ETCD_URL}"
  local pid
  pid="$(launch etcd etcd \
    --name local \
    --data-dir "${CLUSTER_DIR}/etcd" \
    --listen-client-urls "${ETCD_URL}" \
    --advertise-client-urls "${ETCD_URL}" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster "local=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --logger zap --log-outputs stderr)"
  if ! wait_for_url --timeout 30 --pid "$pid" "${ETCD_URL}/health"; then
    show_log_tail etcd
    die "etcd did not become healthy"
  fi
}

start_apiserver() {
  stop_component apiserver
  if port_in_use "$APISERVER_PORT"; then
    die "port ${APISERVER_PORT} is already in use"
  fi

  local bin pid
  bin="$(built_binary kube-apiserver)"
  local -a extra=()
  if [[ -n "${APISERVER_EXTRA_ARGS:-}" ]]; then
    read -r -a extra <<<"$APISERVER_EXTRA_ARGS"
  fi
  log "starting kube-apiserver on ${APISERVER_URL}"
  pid="$(launch apiserver "$bin" \
    --etcd-servers="${ETCD_URL}" \
    --bind-address=127.0.0.1 \
    --secure-port="${APISERVER_PORT}" \
    --tls-cert-file="${PKI_DIR}/apiserver.crt" \
    --tls-private-key-file="${PKI_DIR}/apiserver.key" \
    --client-ca-file="${PKI_DIR}/ca.crt" \
    --service-cluster-ip-range="${SERVICE_CIDR}" \
    --kubelet-client-certificate="${PKI_DIR}/apiserver-kubelet-client.crt" \
    --kubelet-client-key="${PKI_DIR}/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-issuer="${SERVICE_ACCOUNT_ISSUER}" \
    --service-account-key-file="${PKI_DIR}/service-account.pub" \
    --service-account-signing-key-file="${PKI_DIR}/service-account.key" \
    --api-audiences="${SERVICE_ACCOUNT_ISSUER}" \
    --v="${APISERVER_LOG_LEVEL:-2}" \
    "${extra[@]}")"
  if ! wait_for_url --cacert "${PKI_DIR}/ca.crt" --timeout "${APISERVER_READY_TIMEOUT:-60}" \
    --pid "$pid" "${APISERVER_URL}/readyz"; then
    show_log_tail apiserver
    die "kube-apiserver did not become ready; log: ${CLUSTER_DIR}/apiserver.log"
  fi
}

# start_client_component NAME BINARY PORT ARGS... : (re)starts a component that talks to
# the apiserver with its own kubeconfig and serves /healthz on 127.0.0.1:PORT.
start_client_component() {
  local name="$1" binary="$2" port="$3"
  shift 3
  stop_component "$name"
  if port_in_use "$port"; then
    die "port ${port} (${name} health) is already in use"
  fi
  local bin pid
  bin="$(built_binary "$binary")"
  log "starting ${binary}"
  pid="$(launch "$name" "$bin" \
    --kubeconfig="${CLUSTER_DIR}/${name}.kubeconfig" \
    --bind-address=127.0.0.1 \
    --secure-port="$port" \
    --v="${COMPONENT_LOG_LEVEL:-2}" \
    "$@")"
  if ! wait_for_url --timeout 30 --pid "$pid" "http://127.0.0.1:${port}/healthz"; then
    show_log_tail "$name"
    die "${binary} did not become healthy; log: ${CLUSTER_DIR}/${name}.log"
  fi
}

start_controller_manager() {
  start_client_component controller-manager kube-controller-manager "$CONTROLLER_MANAGER_PORT" \
    --root-ca-file="${PKI_DIR}/ca.crt"
}

start_scheduler() {
  start_client_component scheduler kube-scheduler "$SCHEDULER_PORT"
}

start_containerd() {
  if [[ "$(id -u)" != 0 ]]; then
    warn "not root: containerd and the kubelet are not started (pods will stay Pending)"
    return 0
  fi
  stop_component containerd
  local dir="${CLUSTER_DIR}/containerd" pid i
  log "building the local images (pause, busybox)"
  bash "${HACK_DIR}/images/build.sh" "${LOCAL_DIR}/images" || die "building the images failed"
  pod_network_guard "$POD_CIDR"
  write_containerd_config "$dir" "$POD_BRIDGE" "$NODE_POD_SUBNET"
  log "starting containerd (socket ${dir}/containerd.sock)"
  pid="$(launch containerd env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy= \
    containerd --config "${dir}/config.toml")"
  for ((i = 0; i < 100; i++)); do
    if ctr --address "${dir}/containerd.sock" version >/dev/null 2>&1; then break; fi
    pid_alive "$pid" || { show_log_tail containerd; die "containerd exited"; }
    sleep 0.1
  done
  import_images "$dir" "${LOCAL_DIR}/images" || die "importing the images into containerd failed"
}

start_kubelet() {
  [[ "$(id -u)" == 0 ]] || return 0
  stop_component kubelet
  if port_in_use "$KUBELET_HEALTHZ_PORT"; then
    die "port ${KUBELET_HEALTHZ_PORT} (kubelet health) is already in use"
  fi
  local bin pid
  bin="$(built_binary kubelet)"
  mkdir -p "${CLUSTER_DIR}/kubelet" "${CLUSTER_DIR}/pod-logs"
  cat >"${CLUSTER_DIR}/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
podLogsDir: ${CLUSTER_DIR}/pod-logs
containerRuntimeEndpoint: unix://${CLUSTER_DIR}/containerd/containerd.sock
port: ${KUBELET_PORT}
healthzPort: ${KUBELET_HEALTHZ_PORT}
authentication:
  anonymous:
    enabled: false
  x509:
    clientCAFile: ${PKI_DIR}/ca.crt
YAML
  log "starting kubelet (node ${NODE_NAME})"
  pid="$(launch kubelet "$bin" \
    --config="${CLUSTER_DIR}/kubelet-config.yaml" \
    --kubeconfig="${CLUSTER_DIR}/kubelet.kubeconfig" \
    --root-dir="${CLUSTER_DIR}/kubelet" \
    --hostname-override="${NODE_NAME}" \
    --node-ip=127.0.0.1 \
    --v="${COMPONENT_LOG_LEVEL:-2}")"
  if ! wait_for_url --timeout 30 --pid "$pid" "http://127.0.0.1:${KUBELET_HEALTHZ_PORT}/healthz"; then
    show_log_tail kubelet
    die "kubelet did not become healthy; log: ${CLUSTER_DIR}/kubelet.log"
  fi
  log "waiting for node ${NODE_NAME} to be Ready"
  for ((i = 0; i < 60; i++)); do
    if "${LOCAL_BIN}/kubectl" --kubeconfig "$ADMIN_KUBECONFIG" get node "$NODE_NAME" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; then
      return 0
    fi
    sleep 0.5
  done
  show_log_tail kubelet
  die "node ${NODE_NAME} did not become Ready"
}

print_usage() {
  cat <<EOF

Local cluster is up.
  apiserver  ${APISERVER_URL}  (log ${CLUSTER_DIR}/apiserver.log)
  etcd       ${ETCD_URL}  (log ${CLUSTER_DIR}/etcd.log)
  kube-controller-manager  (log ${CLUSTER_DIR}/controller-manager.log)
  kube-scheduler           (log ${CLUSTER_DIR}/scheduler.log)
  containerd               (log ${CLUSTER_DIR}/containerd.log)
  kubelet (node ${NODE_NAME}) (log ${CLUSTER_DIR}/kubelet.log)
  images available to pods: docker.io/library/busybox:1.36 (and :latest), registry.k8s.io/pause:3.10
  (there is no registry: other images fail with ErrImagePull; :latest pulls with imagePullPolicy Always
  fail the same way, so use a tag or imagePullPolicy: IfNotPresent)

Use it with:
  export KUBECONFIG=${ADMIN_KUBECONFIG}
  export PATH=${LOCAL_BIN}:\$PATH
  kubectl get ns

Stop it with hack/local-down.sh (add --clean to delete its data).
EOF
}

main() {
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --skip-build) SKIP_BUILD=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument: $1 (see --help)" ;;
    esac
  done
  cd "$REPO_ROOT"

  bash "${HACK_DIR}/install-deps.sh"
  # install-deps.sh may have found cargo in ~/.cargo/bin without it being on PATH.
  if ! have cargo && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
  fi
  ensure_service_cidr_route
  build
  mkdir -p "$CLUSTER_DIR"
  ensure_certs
  # The admin kubeconfig first: start_kubelet waits for the node with it.
  write_kubeconfig "$ADMIN_KUBECONFIG" "$APISERVER_URL" "${PKI_DIR}/ca.crt" \
    "${PKI_DIR}/admin.crt" "${PKI_DIR}/admin.key" kubernetes-admin

  local component
  for component in "${COMPONENTS[@]}"; do
    "start_${component//-/_}"
  done

  write_kubeconfig "$ADMIN_KUBECONFIG" "$APISERVER_URL" "${PKI_DIR}/ca.crt" \
    "${PKI_DIR}/admin.crt" "${PKI_DIR}/admin.key" kubernetes-admin
  print_usage
}

main "$@"
