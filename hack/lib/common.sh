# shellcheck shell=bash
# Shared helpers for the scripts under hack/. Source it; do not execute it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Provides: REPO_ROOT, LOCAL_DIR, LOCAL_BIN, log, warn, die, have, is_root,
# pid_alive, wait_for_url, port_in_use, free_port.

if [[ -n "${_HACK_COMMON_SH:-}" ]]; then
  return 0
fi
_HACK_COMMON_SH=1

# Absolute path of the repository root (the directory holding hack/).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# Per-checkout scratch area (gitignored): tools in _output/bin, the local
# cluster's state in _output/local.
LOCAL_DIR="${REPO_ROOT}/_output"
LOCAL_BIN="${LOCAL_DIR}/bin"
export REPO_ROOT LOCAL_DIR LOCAL_BIN

# log MESSAGE... : progress message on stderr.
log() {
  printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# warn MESSAGE... : warning on stderr.
warn() {
  printf '[%s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# die MESSAGE... : error on stderr, then exit 1.
die() {
  printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2
  exit 1
}

# have COMMAND : true if COMMAND is on PATH.
have() {
  command -v "$1" >/dev/null 2>&1
}

# is_root : true when running as uid 0.
is_root() {
  [[ "$(id -u)" -eq 0 ]]
}

# pid_alive PID : true if process PID exists and is not a zombie (an exited
# process its parent has not reaped yet).
pid_alive() {
  local pid="$1" stat
  kill -0 "$pid" 2>/dev/null || return 1
  stat="$(cat "/proc/${pid}/stat" 2>/dev/null)" || return 1
  # Field 3 is the state; field 2 (comm) is in parentheses and may hold spaces.
  stat="${stat##*) }"
  [[ "${stat:0:1}" != Z ]]
}

# wait_for_url [--cacert FILE | --insecure] [--timeout SECONDS] [--pid PID] URL
#
# Polls URL with curl until it answers with a 2xx status. Gives up after
# --timeout seconds (default 60) or as soon as process --pid exits. HTTPS
# servers are verified with --cacert, or not at all with --insecure.
# Returns 0 on success, 1 on timeout or when the process died.
wait_for_url() {
  local timeout=60 pid="" url=""
  local -a tls=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --cacert) tls=(--cacert "$2"); shift 2 ;;
      --insecure) tls=(--insecure); shift ;;
      --timeout) timeout="$2"; shift 2 ;;
      --pid) pid="$2"; shift 2 ;;
      -*) die "wait_for_url: unknown option $1" ;;
      *) url="$1"; shift ;;
    esac
  done
  [[ -n "$url" ]] || die "wait_for_url: no URL given"

  local deadline=$((SECONDS + timeout))
  while true; do
    if curl --silent --show-error --fail --output /dev/null \
      --connect-timeout 2 --max-time 5 "${tls[@]}" "$url" 2>/dev/null; then
      return 0
    fi
    if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
      warn "process ${pid} exited while waiting for ${url}"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      warn "timed out after ${timeout}s waiting for ${url}"
      return 1
    fi
    sleep 0.5
  done
}

# port_in_use PORT [HOST] : true if something accepts TCP connections on
# HOST:PORT (default 127.0.0.1).
port_in_use() {
  local port="$1" host="${2:-127.0.0.1}"
  (exec 3<>"/dev/tcp/${host}/${port}") 2>/dev/null
}

# free_port : prints a TCP port on 127.0.0.1 that is free right now.
# The kernel picks it (bind to port 0), so it is outside the usual fixed
# ports; there is the usual race until the caller binds it.
free_port() {
  if have python3; then
    python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
    return
  fi
  # Fallback without python: random ports in the ephemeral range.
  local port i
  for ((i = 0; i < 100; i++)); do
    port=$((20000 + RANDOM % 30000))
    if ! port_in_use "$port"; then
      echo "$port"
      return 0
    fi
  done
  die "free_port: no free port found"
}
