# shellcheck shell=bash disable=SC2034 # variables here are used by the scripts that source it
# Settings and process helpers shared by local-up.sh and local-down.sh.
# Source after common.sh.
#
# Every component of the local cluster is a background process with a pid
# file CLUSTER_DIR/NAME.pid and a log CLUSTER_DIR/NAME.log. COMPONENTS lists
# them in start order; local-down.sh stops them in reverse order.

CLUSTER_DIR="${CLUSTER_DIR:-${LOCAL_DIR}/local}"
PKI_DIR="${CLUSTER_DIR}/pki"

# Start order. To add a component: append its name here and write a
# start_NAME function in local-up.sh (see start_apiserver there).
COMPONENTS=(etcd apiserver controller-manager scheduler containerd kubelet)

SERVICE_CIDR="${SERVICE_CIDR:-10.0.0.0/24}"
# First address of the Service CIDR: the kubernetes.default Service.
KUBERNETES_SERVICE_IP="${KUBERNETES_SERVICE_IP:-10.0.0.1}"
ETCD_CLIENT_PORT="${ETCD_CLIENT_PORT:-2379}"
ETCD_PEER_PORT="${ETCD_PEER_PORT:-2380}"
APISERVER_PORT="${APISERVER_PORT:-6443}"
# Health and metrics ports of kube-controller-manager and kube-scheduler (upstream defaults).
CONTROLLER_MANAGER_PORT="${CONTROLLER_MANAGER_PORT:-10257}"
SCHEDULER_PORT="${SCHEDULER_PORT:-10259}"
ETCD_URL="http://127.0.0.1:${ETCD_CLIENT_PORT}"
# The kubelet (upstream default ports) and its node's pod network: one bridge subnet out of
# the pod range; the rest of the range is blackholed (hack/lib/containerd.sh pod_network_guard).
KUBELET_PORT="${KUBELET_PORT:-10250}"
KUBELET_HEALTHZ_PORT="${KUBELET_HEALTHZ_PORT:-10248}"
NODE_NAME="${NODE_NAME:-$(tr '[:upper:]' '[:lower:]' </proc/sys/kernel/hostname)}"
POD_CIDR="${POD_CIDR:-10.244.0.0/16}"
NODE_POD_SUBNET="${NODE_POD_SUBNET:-10.244.0.0/24}"
POD_BRIDGE="${POD_BRIDGE:-kbr0}"
APISERVER_URL="https://127.0.0.1:${APISERVER_PORT}"
ADMIN_KUBECONFIG="${CLUSTER_DIR}/kubeconfig"

# component_pid NAME : prints the pid of component NAME and succeeds if it is
# running. A pid file whose process is gone, or is some unrelated process that
# reused the pid (its command line does not mention CLUSTER_DIR), is stale and
# is removed.
component_pid() {
  local pidfile="${CLUSTER_DIR}/$1.pid" pid cmdline
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" &&
    cmdline="$(tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null)" &&
    [[ "$cmdline" == *"${CLUSTER_DIR}"* ]]; then
    echo "$pid"
    return 0
  fi
  rm -f "$pidfile"
  return 1
}

# launch NAME COMMAND... : runs COMMAND in the background in its own session,
# detached from this shell, output to CLUSTER_DIR/NAME.log, pid to
# CLUSTER_DIR/NAME.pid. The command line must mention CLUSTER_DIR (see
# component_pid). Prints the pid.
launch() {
  local name="$1"
  shift
  local log_file="${CLUSTER_DIR}/${name}.log"
  mkdir -p "$CLUSTER_DIR"
  printf '\n=== %s starting: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$log_file"
  setsid "$@" >>"$log_file" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"${CLUSTER_DIR}/${name}.pid"
  echo "$pid"
}

# stop_component NAME : stops component NAME if it runs (SIGTERM, then
# SIGKILL after STOP_TIMEOUT seconds, default 20) and removes its pid file.
stop_component() {
  local name="$1" pid
  if ! pid="$(component_pid "$name")"; then
    return 0
  fi
  log "stopping ${name} (pid ${pid})"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + ${STOP_TIMEOUT:-20}))
  while pid_alive "$pid"; do
    if ((SECONDS >= deadline)); then
      warn "${name} (pid ${pid}) did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "${CLUSTER_DIR}/${name}.pid"
}

# show_log_tail NAME : prints the last lines of a component's log to stderr.
show_log_tail() {
  local log_file="${CLUSTER_DIR}/$1.log"
  if [[ -f "$log_file" ]]; then
    echo "---- last lines of ${log_file} ----" >&2
    tail -n "${2:-40}" "$log_file" >&2
    echo "----" >&2
  fi
}

# write_kubeconfig FILE SERVER CA_CRT CLIENT_CRT CLIENT_KEY USER : writes a
# kubeconfig with the certificates embedded, one context "local".
write_kubeconfig() {
  local file="$1" server="$2" ca="$3" crt="$4" key="$5" user="$6"
  local tmp="${file}.tmp"
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: ${server}
    certificate-authority-data: $(base64 -w0 <"$ca")
users:
- name: ${user}
  user:
    client-certificate-data: $(base64 -w0 <"$crt")
    client-key-data: $(base64 -w0 <"$key")
contexts:
- name: local
  context:
    cluster: local
    user: ${user}
current-context: local
preferences: {}
EOF
  )
  mv -f "$tmp" "$file"
}
