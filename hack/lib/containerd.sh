# shellcheck shell=bash
# containerd for the kubelet: a private instance (its own root, state, socket,
# CNI config and registry settings under one directory), so it never touches
# a containerd the machine runs for something else. Used by local-up.sh and
# the tests that run real containers. Source after common.sh.
#
# Network safety: containerd is given a proxy on 127.0.0.1:9 (nothing
# listens there) for every registry, so a pull of an image that is not
# present fails at once on loopback (ErrImagePull, as upstream reports a pull
# that cannot reach its registry) and no pull ever leaves the machine. Pods
# get a bridge with no masquerading; pod_egress_guard drops anything a pod
# sends off the pod range.

# write_containerd_config DIR BRIDGE SUBNET : writes DIR/config.toml and
# DIR/net.d/10-bridge.conflist for a containerd whose socket is
# DIR/containerd.sock and whose pods get addresses from SUBNET on BRIDGE.
write_containerd_config() {
  local dir="$1" bridge="$2" subnet="$3"
  mkdir -p "$dir/root" "$dir/state" "$dir/net.d" "$dir/cni-ipam" "$dir/runc" "$dir/certs.d"
  cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "$dir/containerd.sock"

[ttrpc]
  address = "$dir/containerd.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE:-registry.k8s.io/pause:3.10}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Some kernels (VMs, nested containers) refuse negative oom_score_adj values.
  restrict_oom_score_adj = true
  max_container_log_line_size = 16384
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$dir/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$dir/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$dir/certs.d"
TOML
  cat >"$dir/net.d/10-bridge.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "kubernetes-rs",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$bridge",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$subnet"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$dir/cni-ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

# start_containerd DIR LOG : starts containerd with DIR/config.toml in the
# background (its own session), waits for its socket, prints its pid.
start_containerd() {
  local dir="$1" log="$2" pid i
  HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 no_proxy= \
    setsid containerd --config "$dir/config.toml" >>"$log" 2>&1 </dev/null &
  pid=$!
  for ((i = 0; i < 100; i++)); do
    if [[ -S "$dir/containerd.sock" ]] && ctr --address "$dir/containerd.sock" version >/dev/null 2>&1; then
      echo "$pid"
      return 0
    fi
    pid_alive "$pid" || break
    sleep 0.1
  done
  echo "containerd did not start; see $log" >&2
  tail -n 20 "$log" >&2 || true
  return 1
}

# import_images DIR IMAGES_DIR : imports every tarball of IMAGES_DIR into the
# k8s.io namespace of the containerd at DIR/containerd.sock.
import_images() {
  local dir="$1" images="$2" tarball
  for tarball in "$images"/*.tar; do
    ctr --address "$dir/containerd.sock" -n k8s.io images import --no-unpack=false "$tarball" >/dev/null
  done
}

# pod_network_guard POD_CIDR BRIDGE_SUBNET : the pod range other than the
# bridge's subnet is blackholed, and packets from pods to anything outside
# the pod range are dropped instead of forwarded off the machine.
pod_network_guard() {
  local pod_cidr="$1"
  ip route replace blackhole "$pod_cidr" 2>/dev/null || true
  if ! iptables -C FORWARD -s "$pod_cidr" ! -d "$pod_cidr" -m comment --comment kubernetes-rs-pod-egress -j DROP 2>/dev/null; then
    iptables -I FORWARD 1 -s "$pod_cidr" ! -d "$pod_cidr" -m comment --comment kubernetes-rs-pod-egress -j DROP
  fi
}

# containerd_cleanup DIR BRIDGE : kills and removes every container the
# containerd at DIR/containerd.sock still has, removes the network namespaces of
# its pod sandboxes (and with them the pods' veths) and their address
# reservations, and deletes the pod bridge. For when the kubelet is gone and
# pods are left behind.
containerd_cleanup() {
  local dir="$1" bridge="$2" sock="$1/containerd.sock" id netns=()
  if [[ -S "$sock" ]]; then
    for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      local p
      p="$(ctr --address "$sock" -n k8s.io containers info "$id" 2>/dev/null |
        jq -r 'select(.Labels["io.cri-containerd.kind"] == "sandbox") |
          .Spec.linux.namespaces[]? | select(.type == "network") | .path // empty' 2>/dev/null || true)"
      [[ "$p" == /var/run/netns/* || "$p" == /run/netns/* ]] && netns+=("$p")
    done
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 0.5
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks rm -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io containers rm "$id" >/dev/null 2>&1 || true
    done
  fi
  local p
  for p in "${netns[@]}"; do
    ip netns delete "$(basename "$p")" >/dev/null 2>&1 || { umount "$p" 2>/dev/null; rm -f "$p"; } || true
  done
  # Every pod is gone: so are its address reservations (host-local IPAM keeps one file per IP).
  find "$dir/cni-ipam" -mindepth 2 -type f ! -name 'last_reserved_ip*' ! -name lock -delete 2>/dev/null || true
  ip link del "$bridge" >/dev/null 2>&1 || true
}
