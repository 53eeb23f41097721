#!/usr/bin/env bash
# Benchmark (not a test): starts a private etcd and kube-apiserver on free loopback ports,
# measures start-to-ready, idle RSS, creates/s against raw etcd, LIST and watch latency, and RSS
# with the objects loaded; stops everything. Usage: hack/bench/apiserver.sh [bench flags]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../lib/common.sh
source "${ROOT}/hack/lib/common.sh"
cd "$ROOT"
# BENCH_SKIP_BUILD=1 uses the release binaries already in the target dir.
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -q -p apiserver
  cargo build --release -q -p bench-apiserver
fi
TARGET="${CARGO_TARGET_DIR:-target}"; [[ "$TARGET" == /* ]] || TARGET="${ROOT}/${TARGET}"
tmp="$(mktemp -d)"
etcd_port="$(free_port)"; peer_port="$(free_port)"; api_port="$(free_port)"; floor_port="$(free_port)"
cleanup() { kill "${floor_pid:-}" "${api_pid:-}" "${etcd_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true
etcd --data-dir "$tmp/etcd" --listen-client-urls "http://127.0.0.1:${etcd_port}" \
  --advertise-client-urls "http://127.0.0.1:${etcd_port}" --listen-peer-urls "http://127.0.0.1:${peer_port}" \
  --initial-advertise-peer-urls "http://127.0.0.1:${peer_port}" --initial-cluster "default=http://127.0.0.1:${peer_port}" \
  --log-level error >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
wait_for_url "http://127.0.0.1:${etcd_port}/health" --timeout 30 --pid "$etcd_pid"
start_ns=$(date +%s%N)
"${TARGET}/release/kube-apiserver" --etcd-servers "http://127.0.0.1:${etcd_port}" --secure-port "$api_port" \
  --v 0 >"$tmp/apiserver.log" 2>&1 &
api_pid=$!
until curl -sf "http://127.0.0.1:${api_port}/readyz" >/dev/null 2>&1; do
  kill -0 "$api_pid" 2>/dev/null || { cat "$tmp/apiserver.log"; exit 1; }
  sleep 0.01
done
ready_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
rss() { echo $(( $(awk '/VmRSS/ {print $2}' "/proc/${api_pid}/status") / 1024 )); }
idle_rss=$(rss)
echo "command: hack/bench/apiserver.sh $*  ($(nproc) cores, etcd $(etcd --version | head -1 | awk '{print $3}'))"
echo
# The pass-through proxy (bench-apiserver --serve-floor): the least an apiserver must do per
# create, measured beside it as the ceiling of its ratio on this machine.
"${TARGET}/release/bench-apiserver" --etcd "http://127.0.0.1:${etcd_port}" --apiserver unused \
  --serve-floor "$floor_port" >"$tmp/floor.log" 2>&1 &
floor_pid=$!
wait_for_url "http://127.0.0.1:${floor_port}/healthz" --timeout 30 --pid "$floor_pid"
# CPU time (user + system, in clock ticks) each process used during the run.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
api_cpu0=$(cpu_ticks "$api_pid"); etcd_cpu0=$(cpu_ticks "$etcd_pid")
"${TARGET}/release/bench-apiserver" --etcd "http://127.0.0.1:${etcd_port}" --apiserver "http://127.0.0.1:${api_port}" --apiserver-pid "$api_pid" --etcd-pid "$etcd_pid" \
  --floor "http://127.0.0.1:${floor_port}" --floor-pid "$floor_pid" "$@" | tee "$tmp/out"
hz=$(getconf CLK_TCK)
echo "| apiserver CPU during the run (creates, lists, watches) | $(( ($(cpu_ticks "$api_pid") - api_cpu0) * 1000 / hz )) ms |"
echo "| etcd CPU during the run (raw and apiserver writes) | $(( ($(cpu_ticks "$etcd_pid") - etcd_cpu0) * 1000 / hz )) ms |"
echo "| start to /readyz (empty etcd) | ${ready_ms} ms |"
echo "| apiserver RSS idle after start | ${idle_rss} MiB |"
echo "| apiserver RSS after the run (11,000+ ConfigMaps of 1 KiB cached) | $(rss) MiB |"
