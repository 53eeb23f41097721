#!/usr/bin/env bash
# Runs every test of the project; this is what CI runs (.ci/run).
#   1. hack/install-deps.sh          (etcd, protoc, kubectl, helm, ...)
#   2. cargo fmt --all -- --check
#   3. cargo test --workspace --exclude conformance --no-fail-fast   (tests start their own etcd)
#   4. conformance/run.sh, when it exists (starts its own cluster)
# Every step runs even when an earlier one failed; the exit status is non-zero
# if any step failed. The last line sums the test counts:
#   tests: N passed, N failed, N skipped
# (cargo's "test result:" lines, plus the last such line that
# conformance/run.sh prints, if any).
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
# shellcheck source=hack/lib/common.sh
source "${HACK_DIR}/lib/common.sh"

cd "$REPO_ROOT"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

STEP_NAMES=()
STEP_RESULTS=()
FAILED=0
PASSED_TESTS=0
FAILED_TESTS=0
SKIPPED_TESTS=0

record() {
  STEP_NAMES+=("$1")
  STEP_RESULTS+=("$2")
  if [[ "$2" == failed* ]]; then FAILED=1; fi
}

# step NAME COMMAND... : runs a step with its output shown and kept in
# $WORK/NAME.log; records ok/failed.
step() {
  local name="$1" rc=0
  shift
  echo "==> ${name}: $*" >&2
  { "$@" 2>&1 | tee "${WORK}/${name}.log"; } || rc=$?
  if [[ "$rc" -eq 0 ]]; then
    record "$name" ok
  else
    record "$name" "failed (exit ${rc})"
  fi
}

# Adds up cargo's "test result: ok. 3 passed; 0 failed; 1 ignored; ..." lines.
count_cargo_tests() {
  local counts p f s
  counts="$(awk '
    /^test result: / {
      for (i = 1; i <= NF; i++) {
        if ($(i+1) ~ /^passed;?$/) p += $i
        if ($(i+1) ~ /^failed;?$/) f += $i
        if ($(i+1) ~ /^ignored;?$/) s += $i
      }
    }
    END { printf "%d %d %d\n", p, f, s }' "$1")"
  read -r p f s <<<"$counts"
  PASSED_TESTS=$((PASSED_TESTS + p))
  FAILED_TESTS=$((FAILED_TESTS + f))
  SKIPPED_TESTS=$((SKIPPED_TESTS + s))
}

# Adds the last "N passed, N failed[, N skipped]" line of a log, if any.
count_plain_tests() {
  local line p f s
  line="$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$1" |
    tail -n 1 || true)"
  [[ -n "$line" ]] || return 0
  line="${line#*: }"
  p="$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")"
  f="$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
  s=0
  if [[ "$line" == *skipped ]]; then s="$(sed -E 's/.* ([0-9]+) skipped$/\1/' <<<"$line")"; fi
  PASSED_TESTS=$((PASSED_TESTS + p))
  FAILED_TESTS=$((FAILED_TESTS + f))
  SKIPPED_TESTS=$((SKIPPED_TESTS + s))
}

main() {
  local started=$SECONDS

  echo "==> install-deps" >&2
  if ! bash "${HACK_DIR}/install-deps.sh"; then
    echo "test.sh: install-deps failed; nothing was tested" >&2
    exit 1
  fi
  if ! have cargo && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
  fi
  # Tests find etcd (and, later, kubectl/helm) on PATH.
  export PATH="${LOCAL_BIN}:${PATH}"
  have etcd || die "etcd is not on PATH after install-deps.sh"

  step fmt cargo fmt --all -- --check
  # The workspace's deny-level lints (await_holding_lock, dbg_macro, todo, ...) fail the step.
  step clippy cargo clippy --workspace --all-targets --quiet
  step cargo-test cargo test --workspace --exclude conformance --no-fail-fast
  count_cargo_tests "${WORK}/cargo-test.log"

  if [[ -f conformance/run.sh ]]; then
    if [[ -x conformance/run.sh ]]; then
      step conformance ./conformance/run.sh
    else
      step conformance bash conformance/run.sh
    fi
    count_plain_tests "${WORK}/conformance.log"
  else
    record conformance "skipped (no conformance/run.sh)"
  fi

  local i summary=""
  for i in "${!STEP_NAMES[@]}"; do
    summary+="${summary:+; }${STEP_NAMES[i]} ${STEP_RESULTS[i]}"
  done
  echo
  if [[ "$FAILED" -eq 0 ]]; then
    echo "test.sh: PASS in $((SECONDS - started))s (${summary})"
  else
    echo "test.sh: FAIL in $((SECONDS - started))s (${summary})"
  fi
  echo "tests: ${PASSED_TESTS} passed, ${FAILED_TESTS} failed, ${SKIPPED_TESTS} skipped"
  return "$FAILED"
}

main "$@"
