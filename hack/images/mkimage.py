#!/usr/bin/env python3
"""Writes a single-layer container image as a docker-archive tarball
(manifest.json + config + layer), which `ctr images import` accepts.

  mkimage.py OUT.tar --tag NAME[:TAG]... --config JSON --file SRC:DEST[:MODE]...
             [--symlink TARGET:DEST]... [--dir DEST[:MODE]]...

Everything is written with fixed timestamps and owners, so the same inputs
give the same image digest."""
import argparse
import hashlib
import io
import json
import os
import tarfile

EPOCH = 0


def add_dirs(tar, seen, path):
    parts = path.strip("/").split("/")[:-1]
    for i in range(len(parts)):
        d = "/".join(parts[: i + 1])
        if d and d not in seen:
            seen.add(d)
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = EPOCH
            tar.addfile(info)


def build_layer(files, symlinks, dirs):
    buf = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = []
        for spec in dirs:
            dest, _, mode = spec.partition(":")
            entries.append(("dir", dest.strip("/"), int(mode or "755", 8), None))
        for spec in files:
            src, dest, *mode = spec.split(":")
            entries.append(("file", dest.strip("/"), int(mode[0], 8) if mode else None, src))
        for spec in symlinks:
            target, dest = spec.split(":", 1)
            entries.append(("link", dest.strip("/"), 0o777, target))
        for kind, dest, mode, src in sorted(entries, key=lambda e: e[1]):
            add_dirs(tar, seen, dest)
            info = tarfile.TarInfo(dest)
            info.mtime = EPOCH
            if kind == "dir":
                if dest in seen:
                    continue
                seen.add(dest)
                info.type = tarfile.DIRTYPE
                info.mode = mode
                tar.addfile(info)
            elif kind == "link":
                info.type = tarfile.SYMTYPE
                info.linkname = src
                info.mode = mode
                tar.addfile(info)
            else:
                with open(src, "rb") as f:
                    data = f.read()
                info.size = len(data)
                info.mode = mode if mode is not None else (os.stat(src).st_mode & 0o7777)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--tag", action="append", required=True)
    p.add_argument("--config", default="{}", help="image config (Cmd, Entrypoint, Env, User, WorkingDir)")
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--symlink", action="append", default=[])
    p.add_argument("--dir", action="append", default=[])
    a = p.parse_args()

    layer = build_layer(a.file, a.symlink, a.dir)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": json.loads(a.config),
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hack/images/mkimage.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": a.tag, "Layers": ["layer.tar"]}]
    with tarfile.open(a.out, mode="w", format=tarfile.PAX_FORMAT) as out:
        for name, data in (
            (config_name, config_bytes),
            ("layer.tar", layer),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = EPOCH
            out.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
