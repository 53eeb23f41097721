#!/usr/bin/env bash
# Benchmark (not a test): release builds of kube-apiserver, kube-scheduler and the bench;
# the bench starts the apiserver (--storage-backend=memory) and the scheduler on loopback,
# creates N fake nodes and M pods and reports pods bound per second.
# Usage: hack/bench/scheduler.sh [--nodes 5000] [--pods 10000] [--variant basic|spread|affinity]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# BENCH_SKIP_BUILD=1 uses the release binaries already in the target dir.
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -q -p apiserver
  cargo build --release -q -p scheduler
  cargo build --release -q -p bench-scheduler
fi
TARGET="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET" == /* ]] || TARGET="${ROOT}/${TARGET}"
ulimit -n 65536 2>/dev/null || true
echo "command: hack/bench/scheduler.sh $*  ($(nproc) cores)"
echo
"${TARGET}/release/bench-scheduler" --apiserver-bin "${TARGET}/release/kube-apiserver" \
  --scheduler-bin "${TARGET}/release/kube-scheduler" "$@"
