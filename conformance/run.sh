#!/usr/bin/env bash
# Runs the conformance tests (crate conformance/) against a throw-away cluster:
#   1. builds kube-apiserver, kube-controller-manager and kube-scheduler
#      (cargo build, debug) and the tests
#   2. creates a temp dir with a CA, a serving cert and an admin client cert
#   3. adds the blackhole route for the Service CIDR (network safety, as root)
#   4. starts etcd on free loopback ports, kube-apiserver (TLS, x509 client
#      auth) on a free port, kube-controller-manager and two kube-scheduler
#      replicas (leader election on Leases)
#   5. writes an admin kubeconfig, exports CONFORMANCE_KUBECONFIG and KUBECTL,
#      and runs cargo test -p conformance -- --test-threads=2
#   6. phase 2 (as root): starts a private containerd and the kubelet (node
#      conformance-kubelet, real containers on a bridge of its own) and runs the
#      real_node:: tests of conformance/tests/node/ against it
#   7. tears everything down, however it exits
# The last line is "conformance: N passed, N failed, N skipped" (skipped =
# tests marked #[ignore = "known failure: ..."]); the exit status is non-zero
# when a test failed or the cluster could not be started.
#
# Usage: conformance/run.sh [--skip-build] [--include-ignored] [TESTNAME...]
#   --skip-build       use the binaries already built in the target dir
#   --include-ignored  also run the known failures
#   TESTNAME...        passed to the test binaries as filters
# Environment:
#   KUBECTL            kubectl 1.37 binary (default _output/bin/kubectl, then PATH)
#   APISERVER_BIN      use this kube-apiserver binary (implies --skip-build)
#   CONFORMANCE_KEEP=1 keep the temp dir (logs, certs) after the run
#   CONFORMANCE_TEST_THREADS (default 2), SERVICE_CIDR (default 10.0.0.0/24)
set -euo pipefail

CONF_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=hack/lib/common.sh
source "${CONF_DIR}/../hack/lib/common.sh"
# shellcheck source=hack/lib/pki.sh
source "${CONF_DIR}/../hack/lib/pki.sh"
# shellcheck source=hack/lib/containerd.sh
source "${CONF_DIR}/../hack/lib/containerd.sh"

SERVICE_CIDR="${SERVICE_CIDR:-10.0.0.0/24}"
FAKE_POD_CIDR="10.244.0.0/16"
# The real node's pods (phase 2): a bridge of their own, the rest of the range blackholed.
NODE_POD_CIDR="10.245.0.0/16"
NODE_POD_SUBNET="10.245.0.0/24"
NODE_BRIDGE="kconf0"
NODE_NAME="conformance-kubelet"
KUBERNETES_SERVICE_IP="${KUBERNETES_SERVICE_IP:-10.0.0.1}"
SKIP_BUILD=0
INCLUDE_IGNORED=0
FILTERS=()

usage() {
  sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --skip-build) SKIP_BUILD=1; shift ;;
    --include-ignored) INCLUDE_IGNORED=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *) FILTERS+=("$1"); shift ;;
  esac
done

cd "$REPO_ROOT"
if ! have cargo && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
  export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
fi
export PATH="${LOCAL_BIN}:${PATH}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/conformance.XXXXXX")"
ETCD_PID=""
APISERVER_PID=""
CLIENT_PIDS=()
CONTAINERD_PID=""
KUBELET_PID=""

# stop PID NAME : SIGTERM, then SIGKILL after 10 s.
stop() {
  local pid="$1" name="$2" i
  [[ -n "$pid" ]] || return 0
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
      pid_alive "$pid" || break
      sleep 0.2
    done
    if pid_alive "$pid"; then
      warn "${name} (pid ${pid}) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# Phase 2's node: the kubelet cleans up the pods first (their sandboxes' networks
# included), then what is left is killed through ctr, and the bridge removed.
stop_node() {
  [[ -n "$CONTAINERD_PID" ]] || return 0
  local sock="${WORK}/containerd/containerd.sock" i
  if [[ -n "$KUBELET_PID" ]] && pid_alive "$KUBELET_PID"; then
    "$KUBECTL" --kubeconfig "${WORK}/admin.kubeconfig" delete pods --all-namespaces \
      --field-selector "spec.nodeName=${NODE_NAME}" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    for ((i = 0; i < 60; i++)); do
      [[ -z "$(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null)" ]] && break
      sleep 0.5
    done
  fi
  stop "$KUBELET_PID" kubelet
  containerd_cleanup "${WORK}/containerd" "$NODE_BRIDGE"
  stop "$CONTAINERD_PID" containerd
}

teardown() {
  local rc=$?
  local p
  stop_node
  for p in "${CLIENT_PIDS[@]}"; do stop "$p" component; done
  stop "$APISERVER_PID" kube-apiserver
  stop "$ETCD_PID" etcd
  if [[ "${CONFORMANCE_KEEP:-0}" == 1 ]]; then
    log "kept ${WORK} (CONFORMANCE_KEEP=1)"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

show_tail() {
  echo "---- last lines of $1 ----" >&2
  tail -n "${2:-40}" "$1" >&2 || true
  echo "----" >&2
}

# --- tools --------------------------------------------------------------------

if [[ -z "${KUBECTL:-}" ]]; then
  if [[ -x "${LOCAL_BIN}/kubectl" ]]; then
    KUBECTL="${LOCAL_BIN}/kubectl"
  elif have kubectl; then
    KUBECTL="$(command -v kubectl)"
  else
    die "kubectl not found: run hack/install-deps.sh or set KUBECTL"
  fi
fi
[[ -x "$KUBECTL" ]] || die "KUBECTL=${KUBECTL} is not executable"
if [[ -z "${HELM:-}" && -x "${LOCAL_BIN}/helm" ]]; then HELM="${LOCAL_BIN}/helm"; fi
export HELM
have etcd || die "etcd is not on PATH (hack/install-deps.sh installs it)"
have openssl || die "openssl is not on PATH"

# --- build ----------------------------------------------------------------------

target_dir() {
  local target="${CARGO_TARGET_DIR:-target}"
  if [[ "$target" != /* ]]; then target="${REPO_ROOT}/${target}"; fi
  echo "$target"
}

APISERVER="${WORK}/kube-apiserver"
CONTROLLER_MANAGER="${WORK}/kube-controller-manager"
SCHEDULER="${WORK}/kube-scheduler"
if [[ "$SKIP_BUILD" != 1 && -z "${APISERVER_BIN:-}" ]]; then
  log "building the components (cargo build -p apiserver -p controllers-controller-manager -p scheduler -p kubelet)"
  cargo build -p apiserver -p controllers-controller-manager -p scheduler -p kubelet || die "cargo build failed"
fi
# Private copies: other checkouts may rebuild the same paths in a shared target dir.
for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet; do
  src="$(target_dir)/debug/${bin}"
  if [[ "$bin" == kube-apiserver && -n "${APISERVER_BIN:-}" ]]; then src="$APISERVER_BIN"; fi
  cp "$src" "${WORK}/${bin}" || die "no ${src}; drop --skip-build"
done
log "building the conformance tests"
cargo test -p conformance --no-run || die "cargo test -p conformance --no-run failed"

# --- certificates -----------------------------------------------------------------

PKI="${WORK}/pki"
pki_ensure_ca "$PKI"
pki_ensure_cert "$PKI" apiserver --server --cn kube-apiserver \
  --san DNS:localhost --san IP:127.0.0.1 --san DNS:kubernetes \
  --san DNS:kubernetes.default --san DNS:kubernetes.default.svc \
  --san DNS:kubernetes.default.svc.cluster.local --san "IP:${KUBERNETES_SERVICE_IP}"
pki_ensure_cert "$PKI" admin --client --cn kubernetes-admin --org system:masters
pki_ensure_keypair "$PKI" service-account

# --- network safety -----------------------------------------------------------------

# Nothing here may reach a Service IP: there is no kube-proxy, and 10.0.0.0/8
# belongs to other people's networks. The blackhole route drops such packets
# locally; it must be in place before anything could connect to one.
if is_root; then
  ip route replace blackhole "$SERVICE_CIDR" ||
    die "could not add the blackhole route for ${SERVICE_CIDR}"
  # The fake nodes' pod addresses (conformance/src/fakenode.rs): no bridge carries them.
  ip route replace blackhole "$FAKE_POD_CIDR" ||
    die "could not add the blackhole route for ${FAKE_POD_CIDR}"
elif ! ip route show type blackhole 2>/dev/null | grep -qF "$SERVICE_CIDR"; then
  warn "not root: could not add 'ip route replace blackhole ${SERVICE_CIDR}'"
fi

# --- etcd ---------------------------------------------------------------------------

ETCD_CLIENT_PORT="$(free_port)"
ETCD_PEER_PORT="$(free_port)"
while [[ "$ETCD_PEER_PORT" == "$ETCD_CLIENT_PORT" ]]; do ETCD_PEER_PORT="$(free_port)"; done
ETCD_URL="http://127.0.0.1:${ETCD_CLIENT_PORT}"
log "starting etcd on ${ETCD_URL}"
etcd --name conformance \
  --data-dir "${WORK}/etcd" \
  --listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
  --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
  --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORT}" \
  --initial-cluster "conformance=http://127.0.0.1:${ETCD_PEER_PORT}" \
  --logger zap --log-outputs stderr >"${WORK}/etcd.log" 2>&1 </dev/null &
ETCD_PID=$!
if ! wait_for_url --timeout 30 --pid "$ETCD_PID" "${ETCD_URL}/health"; then
  show_tail "${WORK}/etcd.log"
  die "etcd did not become healthy"
fi

# --- kube-apiserver -------------------------------------------------------------------

log "starting kube-apiserver"
"$APISERVER" \
  --etcd-servers="$ETCD_URL" \
  --bind-address=127.0.0.1 \
  --secure-port=0 \
  --address-file="${WORK}/apiserver.address" \
  --tls-cert-file="${PKI}/apiserver.crt" \
  --tls-private-key-file="${PKI}/apiserver.key" \
  --client-ca-file="${PKI}/ca.crt" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --kubelet-client-certificate="${PKI}/admin.crt" \
  --kubelet-client-key="${PKI}/admin.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="${PKI}/service-account.pub" \
  --service-account-signing-key-file="${PKI}/service-account.key" \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --v="${APISERVER_LOG_LEVEL:-2}" >"${WORK}/apiserver.log" 2>&1 </dev/null &
APISERVER_PID=$!
deadline=$((SECONDS + ${APISERVER_READY_TIMEOUT:-60}))
until [[ -s "${WORK}/apiserver.address" ]]; do
  if ! pid_alive "$APISERVER_PID" || ((SECONDS >= deadline)); then
    show_tail "${WORK}/apiserver.log"
    die "kube-apiserver did not start serving"
  fi
  sleep 0.2
done
APISERVER_URL="https://$(<"${WORK}/apiserver.address")"
if ! wait_for_url --cacert "${PKI}/ca.crt" --timeout "$((deadline - SECONDS + 1))" \
  --pid "$APISERVER_PID" "${APISERVER_URL}/readyz"; then
  show_tail "${WORK}/apiserver.log"
  die "kube-apiserver did not become ready"
fi
log "kube-apiserver ready at ${APISERVER_URL}"

# --- kubeconfig ----------------------------------------------------------------------

KUBECONFIG_FILE="${WORK}/admin.kubeconfig"
(
  umask 077
  cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: conformance
  cluster:
    server: ${APISERVER_URL}
    certificate-authority-data: $(base64 -w0 <"${PKI}/ca.crt")
users:
- name: kubernetes-admin
  user:
    client-certificate-data: $(base64 -w0 <"${PKI}/admin.crt")
    client-key-data: $(base64 -w0 <"${PKI}/admin.key")
contexts:
- name: conformance
  context:
    cluster: conformance
    user: kubernetes-admin
current-context: conformance
preferences: {}
EOF
)
export CONFORMANCE_KUBECONFIG="$KUBECONFIG_FILE"

# --- controller manager and schedulers -----------------------------------------------

# start_client NAME BINARY ARGS... : runs a component with the admin kubeconfig.
start_client() {
  local name="$1" bin="$2"
  shift 2
  "$bin" --kubeconfig="$KUBECONFIG_FILE" --bind-address=127.0.0.1 --secure-port=0 \
    --v="${COMPONENT_LOG_LEVEL:-2}" "$@" >"${WORK}/${name}.log" 2>&1 </dev/null &
  CLIENT_PIDS+=($!)
}
log "starting kube-controller-manager and two kube-scheduler replicas"
start_client controller-manager "$CONTROLLER_MANAGER" --root-ca-file="${PKI}/ca.crt" \
  --node-monitor-grace-period="${NODE_MONITOR_GRACE_PERIOD:-40s}"
start_client scheduler-1 "$SCHEDULER"
start_client scheduler-2 "$SCHEDULER"
sleep 1
for p in "${CLIENT_PIDS[@]}"; do
  if ! pid_alive "$p"; then
    for f in controller-manager scheduler-1 scheduler-2; do show_tail "${WORK}/${f}.log" 20; done
    die "a component exited at start"
  fi
done
export KUBECTL
log "kubectl: ${KUBECTL} ($("$KUBECTL" version --client 2>/dev/null | head -n 1))"

# --- tests ----------------------------------------------------------------------------

TEST_ARGS=(--test-threads="${CONFORMANCE_TEST_THREADS:-2}")
if [[ "$INCLUDE_IGNORED" == 1 ]]; then TEST_ARGS+=(--include-ignored); fi
TEST_ARGS+=("${FILTERS[@]}")

rc=0
cargo test -p conformance --no-fail-fast -- --skip real_node:: "${TEST_ARGS[@]}" 2>&1 |
  tee "${WORK}/test.log" || rc=$?

# --- phase 2: a real node (containerd + kubelet) ------------------------------------------

start_node() {
  local dir="${WORK}/containerd" i port hport
  bash "${REPO_ROOT}/hack/images/build.sh" "${LOCAL_DIR}/images" || return 1
  pod_network_guard "$NODE_POD_CIDR"
  write_containerd_config "$dir" "$NODE_BRIDGE" "$NODE_POD_SUBNET"
  CONTAINERD_PID="$(start_containerd "$dir" "${WORK}/containerd.log")" || return 1
  import_images "$dir" "${LOCAL_DIR}/images" || return 1
  port="$(free_port)"
  hport="$(free_port)"
  mkdir -p "${WORK}/kubelet-root" "${WORK}/pod-logs" "${WORK}/manifests"
  cat >"${WORK}/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
podLogsDir: ${WORK}/pod-logs
staticPodPath: ${WORK}/manifests
containerRuntimeEndpoint: unix://${dir}/containerd.sock
port: ${port}
healthzPort: ${hport}
authentication:
  anonymous:
    enabled: false
  x509:
    clientCAFile: ${PKI}/ca.crt
YAML
  "${WORK}/kubelet" --config="${WORK}/kubelet-config.yaml" --kubeconfig="$KUBECONFIG_FILE" \
    --root-dir="${WORK}/kubelet-root" --hostname-override="$NODE_NAME" --node-ip=127.0.0.1 \
    --v="${COMPONENT_LOG_LEVEL:-2}" >"${WORK}/kubelet.log" 2>&1 </dev/null &
  KUBELET_PID=$!
  for ((i = 0; i < 120; i++)); do
    if "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" get node "$NODE_NAME" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; then
      return 0
    fi
    pid_alive "$KUBELET_PID" || break
    sleep 0.5
  done
  show_tail "${WORK}/kubelet.log"
  return 1
}

if is_root && [[ "${CONFORMANCE_REAL_NODE:-1}" == 1 ]]; then
  log "phase 2: starting containerd and the kubelet (node ${NODE_NAME})"
  if start_node; then
    export CONFORMANCE_NODE_NAME="$NODE_NAME" CONFORMANCE_POD_PREFIX="${NODE_POD_SUBNET%0/24}" \
      CONFORMANCE_STATIC_POD_DIR="${WORK}/manifests"
    cargo test -p conformance --no-fail-fast --test node -- real_node:: "${TEST_ARGS[@]}" 2>&1 |
      tee -a "${WORK}/test.log" || rc=$?
    if [[ "$rc" -ne 0 ]]; then
      show_tail "${WORK}/kubelet.log" 80
      show_tail "${WORK}/containerd.log" 20
    fi
  else
    warn "the real node did not come up"
    rc=1
  fi
else
  warn "not root (or CONFORMANCE_REAL_NODE=0): the real-node tests (conformance/tests/node/) are not run"
fi

if [[ "$rc" -ne 0 ]]; then
  show_tail "${WORK}/apiserver.log" 60
  show_tail "${WORK}/controller-manager.log" 40
  show_tail "${WORK}/scheduler-1.log" 20
  show_tail "${WORK}/scheduler-2.log" 20
fi

read -r passed failed ignored < <(awk '
  /^test result: / {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?$/) p += $i
      if ($(i+1) ~ /^failed;?$/) f += $i
      if ($(i+1) ~ /^ignored;?$/) s += $i
    }
  }
  END { printf "%d %d %d\n", p, f, s }' "${WORK}/test.log")
if [[ "$rc" -ne 0 && "$failed" -eq 0 ]]; then
  # cargo failed without a failing test (build error, crashed test binary).
  failed=1
fi
echo "conformance: ${passed} passed, ${failed} failed, ${ignored} skipped"
exit "$rc"
