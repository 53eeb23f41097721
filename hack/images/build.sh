#!/usr/bin/env bash
# Builds the container images the local cluster and the tests use, from what
# is on this machine (there is no registry): a static pause binary compiled
# from pause.c, and busybox from Debian's busybox-static.
#
#   hack/images/build.sh OUT_DIR     writes OUT_DIR/{pause,busybox,httpd}.tar
#
# httpd is busybox whose entrypoint is busybox's web server on port 80 serving
# a one-line page from /var/www (for charts and manifests that expect an image
# that serves HTTP by default, e.g. `helm create`'s; use it with
# --set image.repository=localhost/busybox-httpd,image.tag=1.36).
#
# Each tarball is a docker-archive that `ctr -n k8s.io images import` loads
# under the names below. Rebuilds only when the output is missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
OUT="${1:?usage: build.sh OUT_DIR}"
mkdir -p "$OUT"

PAUSE_IMAGE="${PAUSE_IMAGE:-registry.k8s.io/pause:3.10}"
HTTPD_IMAGE="${HTTPD_IMAGE:-localhost/busybox-httpd:1.36}"
BUSYBOX_TAGS=(
  docker.io/library/busybox:latest
  docker.io/library/busybox:1.36
  registry.k8s.io/e2e-test-images/busybox:1.36.1-1
)

if [[ ! -s "$OUT/pause.tar" || "$HERE/pause.c" -nt "$OUT/pause.tar" ]]; then
  work="$(mktemp -d)"
  gcc -static -Os -o "$work/pause" "$HERE/pause.c"
  python3 "$HERE/mkimage.py" "$OUT/pause.tar.tmp" --tag "$PAUSE_IMAGE" \
    --config '{"Entrypoint":["/pause"],"User":"65535:65535"}' \
    --file "$work/pause:/pause:755"
  mv "$OUT/pause.tar.tmp" "$OUT/pause.tar"
  rm -rf "$work"
fi

busybox_args() {
  local work="$1" busybox
  busybox="$(command -v busybox || true)"
  [[ -x /bin/busybox ]] && busybox=/bin/busybox
  if [[ -z "$busybox" || "$(ldd "$busybox" 2>&1 || true)" != *"not a dynamic"* ]]; then
    echo "build.sh: a static busybox is needed (apt-get install busybox-static)" >&2
    exit 1
  fi
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$work/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$work/group"
  ARGS=(--file "$busybox:/bin/busybox:755" --file "$work/passwd:/etc/passwd:644"
    --file "$work/group:/etc/group:644" --dir /tmp:1777 --dir /root:700 --dir /home:755
    --dir /var/www:755 --dir /proc:555 --dir /sys:555 --dir /dev:755 --dir /etc:755)
  while read -r applet; do
    [[ -n "$applet" && "$applet" != busybox ]] && ARGS+=(--symlink "/bin/busybox:/bin/${applet}")
  done < <("$busybox" --list)
}

ENV_JSON='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'

if [[ ! -s "$OUT/busybox.tar" || "$HERE/mkimage.py" -nt "$OUT/busybox.tar" ]]; then
  work="$(mktemp -d)"
  busybox_args "$work"
  tags=()
  for t in "${BUSYBOX_TAGS[@]}"; do tags+=(--tag "$t"); done
  python3 "$HERE/mkimage.py" "$OUT/busybox.tar.tmp" "${tags[@]}" \
    --config "{\"Cmd\":[\"sh\"],${ENV_JSON}}" "${ARGS[@]}"
  mv "$OUT/busybox.tar.tmp" "$OUT/busybox.tar"
  rm -rf "$work"
fi

if [[ ! -s "$OUT/httpd.tar" || "$HERE/mkimage.py" -nt "$OUT/httpd.tar" || "${BASH_SOURCE[0]}" -nt "$OUT/httpd.tar" ]]; then
  work="$(mktemp -d)"
  busybox_args "$work"
  printf '<html><body>busybox httpd</body></html>\n' >"$work/index.html"
  python3 "$HERE/mkimage.py" "$OUT/httpd.tar.tmp" --tag "$HTTPD_IMAGE" \
    --config "{\"Entrypoint\":[\"/bin/httpd\",\"-f\",\"-v\",\"-p\",\"80\",\"-h\",\"/var/www\"],${ENV_JSON}}" \
    "${ARGS[@]}" --file "$work/index.html:/var/www/index.html:644"
  mv "$OUT/httpd.tar.tmp" "$OUT/httpd.tar"
  rm -rf "$work"
fi
