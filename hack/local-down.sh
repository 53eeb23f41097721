#!/usr/bin/env bash
# Stops the local cluster started by hack/local-up.sh (every component with a
# pid file in _output/local, in reverse start order). Keeps etcd's data, the
# certificates and the kubeconfig unless --clean is given, which deletes
# _output/local entirely. The Service CIDR blackhole route stays: it only
# drops traffic that must not leave this machine anyway.
#
# containerd's remaining containers and the pods' network namespaces are removed
# before containerd stops.
#
# Usage: hack/local-down.sh [--clean]
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=hack/lib/common.sh
source "${HACK_DIR}/lib/common.sh"
# shellcheck source=hack/lib/cluster.sh
source "${HACK_DIR}/lib/cluster.sh"
# shellcheck source=hack/lib/containerd.sh
source "${HACK_DIR}/lib/containerd.sh"

main() {
  local clean=0
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --clean) clean=1; shift ;;
      -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown argument: $1 (usage: hack/local-down.sh [--clean])" ;;
    esac
  done

  local i pidfile name
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    if [[ "${COMPONENTS[i]}" == containerd ]] && component_pid containerd >/dev/null; then
      # The kubelet is stopped: remove the pods' containers and networks it left running
      # (the API objects stay; the next local-up's kubelet starts them again).
      log "removing the pods' containers and networks"
      containerd_cleanup "${CLUSTER_DIR}/containerd" "$POD_BRIDGE"
    fi
    stop_component "${COMPONENTS[i]}"
  done
  # Pid files of components no longer listed in COMPONENTS.
  if [[ -d "$CLUSTER_DIR" ]]; then
    for pidfile in "$CLUSTER_DIR"/*.pid; do
      [[ -e "$pidfile" ]] || continue
      name="$(basename "$pidfile" .pid)"
      stop_component "$name"
    done
  fi

  if [[ "$clean" == 1 ]]; then
    log "deleting ${CLUSTER_DIR}"
    rm -rf "$CLUSTER_DIR"
  fi
  log "local cluster stopped"
}

main "$@"
