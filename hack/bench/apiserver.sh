#!/usr/bin/env bash
# Benchmark: apiserver creates/s over raw etcd create transactions/s on the same private etcd,
# and list latency. Starts its own etcd and kube-apiserver on free loopback ports, stops them.
# Usage: hack/bench/apiserver.sh [-n COUNT] [-c CONCURRENCY]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../lib/common.sh
source "${ROOT}/hack/lib/common.sh"
cd "$ROOT"
cargo build --release -q -p apiserver -p bench-apiserver
TARGET="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET" == /* ]] || TARGET="${ROOT}/${TARGET}"
tmp="$(mktemp -d)"
etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"
cleanup() { kill "${api_pid:-}" "${etcd_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
etcd --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:${etcd_port}" \
  --advertise-client-urls "http://127.0.0.1:${etcd_port}" --listen-peer-urls "http://127.0.0.1:${peer_port}" \
  --initial-advertise-peer-urls "http://127.0.0.1:${peer_port}" --initial-cluster "default=http://127.0.0.1:${peer_port}" \
  --log-level error >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
"${TARGET}/release/kube-apiserver" --etcd-servers "http://127.0.0.1:${etcd_port}" --secure-port "$api_port" \
  --v 0 >"$tmp/apiserver.log" 2>&1 &
api_pid=$!
wait_for_url "http://127.0.0.1:${api_port}/readyz" --timeout 60 --pid "$api_pid"
echo "command: hack/bench/apiserver.sh $*"
"${TARGET}/release/bench-apiserver" --etcd "http://127.0.0.1:${etcd_port}" --apiserver "http://127.0.0.1:${api_port}" "$@"
echo "apiserver RSS after run: $(( $(awk '/VmRSS/ {print $2}' "/proc/${api_pid}/status") / 1024 )) MiB"
