#!/usr/bin/env python3
"""Regenerates `table.rs`: the patch and list metadata of every built-in Kubernetes type.

The facts are the ones the upstream OpenAPI document (`x-kubernetes-patch-strategy`,
`x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
`x-kubernetes-map-type`) is generated from: the `+tag=value` comment markers and the
`patchStrategy`/`patchMergeKey` struct tags of the Go API types. This script reads checkouts of
k8s.io/api, k8s.io/apimachinery, k8s.io/apiextensions-apiserver and k8s.io/kube-aggregator, keeps
only definitions that k8s-openapi also knows, and writes a sorted Rust table.

Usage:
  gen_table.py --api DIR --apimachinery DIR --apiextensions DIR --aggregator DIR \
               --k8s-openapi DIR/src/v1_37 --out DIR
It also writes `roots.rs`: every k8s-openapi type that implements `Resource`, the roots from which
the type graph collects all definitions a patch can reach.
"""

import argparse
import os
import re
import sys

SKIP_FILE = re.compile(r"(_test\.go|generated\.pb\.go|zz_generated\..*|types_swagger_doc_generated\.go)$")
TYPE_RE = re.compile(r"^type\s+(\w+)\s+struct\s*\{\s*$")
TAG_RE = re.compile(r"`([^`]*)`")
IMPORT_RE = re.compile(r'^\s*(?:(\w+|\.)\s+)?"([^"]+)"')


def model_prefix(go_pkg):
    """k8s.io/api/core/v1 -> io.k8s.api.core.v1 (the OpenAPI definition naming rule)."""
    domain, _, rest = go_pkg.partition("/")
    return ".".join(reversed(domain.split("."))) + "." + rest.replace("/", ".")


def struct_tag(tags, key):
    m = re.search(r'(?:^|\s)' + re.escape(key) + r':"([^"]*)"', tags)
    return m.group(1) if m else None


def comment_tags(lines):
    """Extracts `+key=value` markers (gengo's ExtractCommentTags with the "+" marker)."""
    out = {}
    for line in lines:
        text = line.strip()
        if not text.startswith("+"):
            continue
        key, _, value = text[1:].partition("=")
        out.setdefault(key, []).append(value)
    return out


class Package:
    def __init__(self, go_pkg, directory):
        self.go_pkg = go_pkg
        self.prefix = model_prefix(go_pkg)
        self.structs = {}  # name -> (type comment tags, [field dicts])
        self.imports = {}  # alias -> go package
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".go") or SKIP_FILE.search(name):
                continue
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                self.parse(f.read().splitlines())

    def parse(self, lines):
        in_import = False
        comments, prev_blank = [], False
        i = 0
        while i < len(lines):
            line = lines[i]
            stripped = line.strip()
            if stripped.startswith("import ("):
                in_import = True
            elif in_import and stripped == ")":
                in_import = False
            elif in_import or stripped.startswith("import "):
                m = IMPORT_RE.match(stripped.replace("import ", "", 1) if not in_import else stripped)
                if m:
                    alias = m.group(1) or m.group(2).rsplit("/", 1)[-1]
                    self.imports[alias] = m.group(2)
            m = TYPE_RE.match(line)
            if m:
                i = self.parse_struct(m.group(1), comment_tags(comments), lines, i + 1)
                comments = []
                continue
            if stripped.startswith("//"):
                comments.append(stripped[2:])
            else:
                comments = []
            i += 1

    def parse_struct(self, name, type_tags, lines, i):
        fields, comments, depth = [], [], 1
        while i < len(lines):
            stripped = lines[i].strip()
            i += 1
            if depth > 1:
                depth += stripped.count("{") - stripped.count("}")
                continue
            if stripped == "}":
                break
            if stripped.startswith("//"):
                comments.append(stripped[2:])
                continue
            if not stripped:
                comments = []
                continue
            if stripped.endswith("{"):
                depth += 1  # anonymous nested struct: not part of any API type's wire form here
                comments = []
                continue
            tag_m = TAG_RE.search(stripped)
            tags = tag_m.group(1) if tag_m else ""
            decl = TAG_RE.sub("", stripped).split("//")[0].split()
            json_tag = struct_tag(tags, "json")
            json_name = json_tag.split(",")[0] if json_tag is not None else None
            inline = json_tag is not None and ",inline" in json_tag
            if len(decl) == 1:  # embedded field
                typ = decl[0].lstrip("*")
                if json_name in (None, "") or inline:
                    fields.append({"embed": typ})
                    comments = []
                    continue
                go_name = typ.split(".")[-1]
            else:
                go_name = decl[0]
                if inline:
                    fields.append({"embed": decl[1].lstrip("*")})
                    comments = []
                    continue
            if json_name == "-" or not go_name[:1].isupper():
                comments = []
                continue
            fields.append({
                "json": json_name or go_name,
                "ctags": comment_tags(comments),
                "patchStrategy": struct_tag(tags, "patchStrategy"),
                "patchMergeKey": struct_tag(tags, "patchMergeKey"),
            })
            comments = []
        self.structs[name] = (type_tags, fields)
        return i


def flatten(packages, pkg, name, seen=()):
    """The JSON fields of a struct, with inlined embedded structs expanded."""
    if (pkg.go_pkg, name) in seen or name not in pkg.structs:
        return []
    out = []
    for f in pkg.structs[name][1]:
        if "embed" not in f:
            out.append(f)
            continue
        target, tname = pkg, f["embed"]
        if "." in tname:
            alias, tname = tname.split(".", 1)
            target = packages.get(pkg.imports.get(alias, ""))
            if target is None:
                continue
        out.extend(flatten(packages, target, tname, seen + ((pkg.go_pkg, name),)))
    return out


def known_definitions(k8s_openapi_src):
    """Definition name -> JSON property names, as k8s-openapi's generated types know them."""
    names = {}
    for root, _, files in os.walk(k8s_openapi_src):
        for fn in files:
            if fn.endswith(".rs"):
                with open(os.path.join(root, fn), encoding="utf-8") as f:
                    text = f.read()
                props = set(re.findall(r'"([^"]+)" => Field::Key_', text))
                for m in re.finditer(r'fn schema_name\(\)[^{]*\{\s*"([^"]+)"\.into\(\)', text):
                    names[m.group(1)] = props
    return names


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def opt(s):
    return "None" if s is None else "Some(" + rust_str(s) + ")"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", required=True)
    ap.add_argument("--apimachinery", required=True)
    ap.add_argument("--apiextensions", required=True)
    ap.add_argument("--aggregator", required=True)
    ap.add_argument("--k8s-openapi", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    dirs = {}
    for group in sorted(os.listdir(args.api)):
        gdir = os.path.join(args.api, group)
        if not os.path.isdir(gdir) or group.startswith("."):
            continue
        for version in sorted(os.listdir(gdir)):
            vdir = os.path.join(gdir, version)
            if os.path.isdir(vdir):
                dirs["k8s.io/api/%s/%s" % (group, version)] = vdir
    for sub in ["pkg/apis/meta/v1", "pkg/runtime", "pkg/util/intstr", "pkg/api/resource", "pkg/version"]:
        dirs["k8s.io/apimachinery/" + sub] = os.path.join(args.apimachinery, sub)
    dirs["k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"] = os.path.join(
        args.apiextensions, "pkg/apis/apiextensions/v1")
    dirs["k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"] = os.path.join(
        args.aggregator, "pkg/apis/apiregistration/v1")
    packages = {p: Package(p, d) for p, d in dirs.items()}
    known = known_definitions(args.k8s_openapi)

    rows, struct_rows, seen_defs = [], [], set()
    for pkg in packages.values():
        for name, (type_tags, _) in pkg.structs.items():
            definition = pkg.prefix + "." + name
            if definition not in known:
                continue
            seen_defs.add(definition)
            st = (type_tags.get("structType") or type_tags.get("mapType") or [None])[0]
            if st:
                struct_rows.append((definition, st))
            for f in flatten(packages, pkg, name):
                ct = f["ctags"]
                strategy = f["patchStrategy"] or (ct.get("patchStrategy") or [None])[0]
                merge_key = f["patchMergeKey"] or (ct.get("patchMergeKey") or [None])[0]
                if f["patchStrategy"] != (ct.get("patchStrategy") or [None])[0] or \
                        f["patchMergeKey"] != (ct.get("patchMergeKey") or [None])[0]:
                    print("note: struct tag and marker differ on %s.%s: %r/%r vs %r" % (
                        definition, f["json"], f["patchStrategy"], f["patchMergeKey"],
                        {k: ct.get(k) for k in ("patchStrategy", "patchMergeKey")}), file=sys.stderr)
                list_type = (ct.get("listType") or [None])[0]
                map_keys = ct.get("listMapKey") or []
                map_type = (ct.get("mapType") or [None])[0]
                if f["json"] not in known[definition]:
                    print("skipped: %s.%s is not a property in k8s-openapi" % (definition, f["json"]),
                          file=sys.stderr)
                    continue
                if strategy or merge_key or list_type or map_keys or map_type:
                    rows.append((definition, f["json"], strategy, merge_key, list_type, map_keys, map_type))
    rows.sort(key=lambda r: (r[0], r[1]))
    struct_rows.sort()
    missing = sorted(d for d in known if d not in seen_defs)
    print("definitions in k8s-openapi without Go source here: %d" % len(missing), file=sys.stderr)
    for d in missing:
        print("  " + d, file=sys.stderr)

    write_roots(args.k8s_openapi, os.path.join(args.out, "roots.rs"))
    out = open(os.path.join(args.out, "table.rs"), "w", encoding="utf-8")
    out.write("//! Generated by gen_table.py from the Kubernetes v1.37 API type sources: the patch and\n")
    out.write("//! list extensions of every built-in OpenAPI definition. Do not edit by hand.\n\n")
    out.write("use super::FieldMeta;\n\n")
    out.write("/// (definition, field JSON name, metadata), sorted by definition then field.\n")
    out.write("#[rustfmt::skip]\n")
    out.write("pub(super) static FIELDS: &[(&str, &str, FieldMeta)] = &[\n")
    for d, f, s, k, lt, mk, mt in rows:
        keys = "&[" + ", ".join(rust_str(x) for x in mk) + "]"
        out.write("    (%s, %s, FieldMeta { patch_strategy: %s, patch_merge_key: %s, list_type: %s, "
                  "list_map_keys: %s, map_type: %s }),\n" % (rust_str(d), rust_str(f), opt(s), opt(k), opt(lt), keys, opt(mt)))
    out.write("];\n\n")
    out.write("/// Definition-level `x-kubernetes-map-type` (from `+structType`/`+mapType` on the type), sorted.\n")
    out.write("#[rustfmt::skip]\n")
    out.write("pub(super) static DEFINITION_MAP_TYPES: &[(&str, &str)] = &[\n")
    for d, st in struct_rows:
        out.write("    (%s, %s),\n" % (rust_str(d), rust_str(st)))
    out.write("];\n")
    out.close()


def write_roots(k8s_openapi_src, path):
    roots = []
    for root, _, files in os.walk(k8s_openapi_src):
        for fn in files:
            full = os.path.join(root, fn)
            with open(full, encoding="utf-8") as f:
                for m in re.finditer(r"^impl crate::Resource for (\w+) \{", f.read(), re.M):
                    module = os.path.relpath(root, k8s_openapi_src).replace(os.sep, "::")
                    roots.append("k8s_openapi::%s::%s" % (module, m.group(1)))
    roots.sort()
    with open(path, "w", encoding="utf-8") as out:
        out.write("//! Generated by gen_table.py: every k8s-openapi type that implements `Resource`; the type\n")
        out.write("//! graph starts from these and collects every definition they reach. Do not edit by hand.\n\n")
        out.write("use schemars::SchemaGenerator;\n\n")
        out.write("pub(super) fn add_roots(generator: &mut SchemaGenerator) {\n")
        for r in roots:
            out.write("    generator.subschema_for::<%s>();\n" % r)
        out.write("}\n")


if __name__ == "__main__":
    main()
