#!/usr/bin/env bash
# Benchmark (not a test) against the local cluster (start it first with hack/local-up.sh, as
# root): pod created -> Running latency over N pods bound to the kubelet's node, the kubelet's
# RSS with 30 pods running, and for comparison a bare `ctr run --rm` of the same image on the
# same containerd. Creates everything in one namespace, deleted at the end.
# Usage: hack/bench/kubelet.sh [--pods 50] [--rss-pods 30]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=hack/lib/common.sh
source hack/lib/common.sh
# shellcheck source=hack/lib/cluster.sh
source hack/lib/cluster.sh
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -q -p bench-kubelet
fi
TARGET="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET" == /* ]] || TARGET="${ROOT}/${TARGET}"
pid="$(component_pid kubelet)" || die "the local cluster's kubelet is not running (hack/local-up.sh)"
sock="${CLUSTER_DIR}/containerd/containerd.sock"
echo "command: hack/bench/kubelet.sh $*  ($(nproc) cores)"
echo
times=()
for i in 1 2 3 4 5; do
  s=$(date +%s.%N)
  ctr --address "$sock" -n k8s.io run --rm docker.io/library/busybox:1.36 "bench-ctr-$$-$i" true >/dev/null
  e=$(date +%s.%N)
  times+=("$(echo "$e - $s" | bc)")
done
printf 'bare ctr run --rm busybox true (5 runs): %s s\n' "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)"
"${TARGET}/release/bench-kubelet" --kubeconfig "$ADMIN_KUBECONFIG" --node "$NODE_NAME" --kubelet-pid "$pid" "$@"
