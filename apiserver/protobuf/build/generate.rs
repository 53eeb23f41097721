//! Build script: joins the k8s-pb wire schema with k8s-openapi's JSON names and writes the static
//! schema table (`schema_table.rs` in OUT_DIR) that the runtime transcoder walks.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use crate::openapi::{OaCrate, OaStruct};
use crate::pb::{PbCrate, PbField, PbMessage, PbShape, PbType};

/// Messages whose JSON form is not an object of their fields (custom Go JSON marshalling).
const SPECIAL: &[(&str, &str)] = &[
    ("apimachinery.pkg.apis.meta.v1.Time", "Time"),
    ("apimachinery.pkg.apis.meta.v1.MicroTime", "MicroTime"),
    ("apimachinery.pkg.apis.meta.v1.Duration", "Duration"),
    ("apimachinery.pkg.apis.meta.v1.FieldsV1", "RawJson"),
    ("apimachinery.pkg.api.resource.Quantity", "Quantity"),
    ("apimachinery.pkg.api.resource.QuantityValue", "Quantity"),
    ("apimachinery.pkg.util.intstr.IntOrString", "IntOrString"),
    ("apimachinery.pkg.runtime.RawExtension", "RawExtension"),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.Json",
        "RawJson",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrArray",
        "SchemaOrArray",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrBool",
        "SchemaOrBool",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1.JsonSchemaPropsOrStringArray",
        "SchemaOrStringArray",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.Json",
        "RawJson",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JsonSchemaPropsOrArray",
        "SchemaOrArray",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JsonSchemaPropsOrBool",
        "SchemaOrBool",
    ),
    (
        "apiextensions_apiserver.pkg.apis.apiextensions.v1beta1.JsonSchemaPropsOrStringArray",
        "SchemaOrStringArray",
    ),
];

/// Kinds of `meta.k8s.io/v1` that upstream registers in every group version.
const META_KINDS: &[&str] = &[
    "Status",
    "WatchEvent",
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
    "PartialObjectMetadata",
    "PartialObjectMetadataList",
];
const META_MODULE: &str = "apimachinery.pkg.apis.meta.v1";

/// Served kinds that neither crate declares as a resource: (module, struct, apiVersion, kind).
const EXTRA_KINDS: &[(&str, &str, &str, &str)] = &[
    ("api.core.v1", "List", "v1", "List"),
    (
        "api.apidiscovery.v2",
        "APIGroupDiscoveryList",
        "apidiscovery.k8s.io/v2",
        "APIGroupDiscoveryList",
    ),
    (
        "api.apidiscovery.v2beta1",
        "APIGroupDiscoveryList",
        "apidiscovery.k8s.io/v2beta1",
        "APIGroupDiscoveryList",
    ),
];

/// Lower-case alphanumerics only: `podIP`, `pod_ip` and `$ref`/`ref` meet here.
fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn camel(rust: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in rust.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Statistics printed as build warnings when `APISERVER_PROTOBUF_DEBUG` is set.
#[derive(Default)]
pub struct Report {
    pub unmatched_messages: Vec<String>,
    pub guessed_fields: Vec<String>,
    pub inlined: Vec<String>,
    pub no_go_facts: Vec<String>,
}

struct Index<'a> {
    /// (module, norm(struct name)) -> openapi struct.
    exact: HashMap<(String, String), &'a OaStruct>,
    /// (group module without version, norm(name)) -> openapi structs of other versions.
    by_group: HashMap<(String, String), Vec<&'a OaStruct>>,
    /// norm(json name) -> json name, over the whole crate.
    global: HashMap<String, String>,
}

fn group_of(module: &str) -> String {
    module
        .rsplit_once('.')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default()
}

fn build_index(oa: &OaCrate) -> Index<'_> {
    let mut idx = Index {
        exact: HashMap::new(),
        by_group: HashMap::new(),
        global: HashMap::new(),
    };
    for s in oa.structs.values() {
        idx.exact.insert((s.module.clone(), norm(&s.name)), s);
        idx.by_group
            .entry((group_of(&s.module), norm(&s.name)))
            .or_default()
            .push(s);
        for json in s.json_by_rust.values() {
            idx.global.entry(norm(json)).or_insert_with(|| json.clone());
        }
    }
    idx
}

fn openapi_candidates<'a>(idx: &Index<'a>, msg: &PbMessage) -> Vec<&'a OaStruct> {
    let key = (msg.module.clone(), norm(&msg.name));
    if let Some(s) = idx.exact.get(&key) {
        return vec![*s];
    }
    let mut others = idx
        .by_group
        .get(&(group_of(&msg.module), norm(&msg.name)))
        .cloned()
        .unwrap_or_default();
    others.sort_by(|a, b| b.module.cmp(&a.module));
    others
}

/// How one field appears in JSON.
#[derive(Clone)]
struct Resolved {
    /// JSON key; `None` for a Go embedded struct whose fields are inlined into the parent.
    json: Option<String>,
    required: bool,
    /// Whether the name came from k8s-openapi (as opposed to a camelCase guess).
    known: bool,
}

/// Resolves JSON names for every field of every message, detecting inlined embedded structs.
struct Resolver<'a> {
    pb: &'a PbCrate,
    idx: Index<'a>,
    done: HashMap<String, Vec<Resolved>>,
    visiting: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn fields(&mut self, name: &str) -> Vec<Resolved> {
        if let Some(r) = self.done.get(name) {
            return r.clone();
        }
        let Some(msg) = self.pb.messages.get(name) else {
            return Vec::new();
        };
        if self.visiting.iter().any(|v| v == name) {
            return Vec::new();
        }
        self.visiting.push(name.to_string());
        let cands = openapi_candidates(&self.idx, msg);
        let mut out = Vec::new();
        for f in &msg.fields {
            out.push(self.field(&cands, f));
        }
        self.visiting.pop();
        self.done.insert(name.to_string(), out.clone());
        out
    }

    /// JSON keys a message contributes to its parent when inlined (its own keys, recursively).
    fn flat_keys(&mut self, name: &str) -> Vec<String> {
        let Some(msg) = self.pb.messages.get(name) else {
            return Vec::new();
        };
        let resolved = self.fields(name);
        let mut keys = Vec::new();
        for (f, r) in msg.fields.iter().zip(resolved) {
            match (r.json, &f.ty) {
                (Some(k), _) => keys.push(k),
                (None, PbType::Message(child)) => keys.extend(self.flat_keys(child)),
                (None, _) => {}
            }
        }
        keys
    }

    fn field(&mut self, cands: &[&OaStruct], f: &PbField) -> Resolved {
        let rust_norm = norm(&f.rust_name);
        for (i, s) in cands.iter().enumerate() {
            let exact = [f.rust_name.clone(), format!("{}_", f.rust_name)];
            let found = exact
                .iter()
                .find_map(|r| s.json_by_rust.get(r).map(|j| (r.clone(), j.clone())))
                .or_else(|| {
                    s.json_by_rust
                        .iter()
                        .find(|(_, j)| norm(j) == rust_norm)
                        .map(|(r, j)| (r.clone(), j.clone()))
                });
            if let Some((rust, json)) = found {
                let required = i == 0 && s.required.get(&rust).copied().unwrap_or(false);
                return Resolved {
                    json: Some(json),
                    required,
                    known: true,
                };
            }
        }
        // A Go embedded struct (`json:",inline"`): the parent's JSON object has no key for it
        // but holds all of the embedded message's keys.
        if let (Some(parent), PbType::Message(child), PbShape::Single) =
            (cands.first(), &f.ty, &f.shape)
        {
            let keys = self.flat_keys(child);
            let parent_keys: Vec<&String> = parent.json_by_rust.values().collect();
            if !keys.is_empty() && keys.iter().all(|k| parent_keys.contains(&k)) {
                return Resolved {
                    json: None,
                    required: false,
                    known: true,
                };
            }
        }
        if let Some(json) = self.idx.global.get(&rust_norm) {
            return Resolved {
                json: Some(json.clone()),
                required: false,
                known: true,
            };
        }
        Resolved {
            json: Some(camel(&f.rust_name)),
            required: false,
            known: false,
        }
    }
}

fn scalar_variant(s: &str) -> Result<&'static str, String> {
    Ok(match s {
        "double" => "Double",
        "float" => "Float",
        "int32" => "Int32",
        "int64" => "Int64",
        "uint32" => "Uint32",
        "uint64" => "Uint64",
        "sint32" => "Sint32",
        "sint64" => "Sint64",
        "fixed32" => "Fixed32",
        "fixed64" => "Fixed64",
        "sfixed32" => "Sfixed32",
        "sfixed64" => "Sfixed64",
        "bool" => "Bool",
        "string" => "String",
        "bytes" => "Bytes",
        other => return Err(format!("unsupported scalar type `{other}`")),
    })
}

/// A message with a single repeated string field `items` and no counterpart struct in
/// k8s-openapi is a Go named `[]string` (e.g. `ExtraValue`, `Verbs`): JSON renders it as an array.
fn is_string_list(msg: &PbMessage, has_openapi: bool) -> bool {
    !has_openapi
        && msg.fields.len() == 1
        && msg.fields[0].rust_name == "items"
        && matches!(msg.fields[0].shape, PbShape::Repeated)
        && msg.fields[0].ty == PbType::Scalar("string".to_string())
}

/// Go field facts from `data/go_fields.txt`: (module, norm(struct), tag) -> (pointer, omitempty).
pub type GoFields = HashMap<(String, String, u32), (bool, bool)>;

/// Parses `data/go_fields.txt` (see `hack/go_fields.py`).
pub fn parse_go_fields(text: &str) -> Result<GoFields, String> {
    let mut out = GoFields::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (Some(module), Some(name)) = (parts.next(), parts.next()) else {
            return Err(format!("bad go_fields line: {line}"));
        };
        for field in parts {
            let digits = field.trim_end_matches(['p', 'o']);
            let tag: u32 = digits
                .parse()
                .map_err(|_| format!("bad go_fields entry {field}"))?;
            let flags = &field[digits.len()..];
            out.insert(
                (module.to_string(), norm(name), tag),
                (flags.contains('p'), flags.contains('o')),
            );
        }
    }
    Ok(out)
}

/// Renders the whole table as Rust source.
pub fn generate(
    pb: &PbCrate,
    oa: &OaCrate,
    go_fields: &GoFields,
    report: &mut Report,
) -> Result<String, String> {
    let mut resolver = Resolver {
        pb,
        idx: build_index(oa),
        done: HashMap::new(),
        visiting: Vec::new(),
    };
    let names: Vec<&String> = pb.messages.keys().collect();
    let index_of: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let special: HashMap<&str, &str> = SPECIAL.iter().copied().collect();

    let mut out = String::new();
    out.push_str(
        "// @generated by apiserver-protobuf's build script from k8s-pb and k8s-openapi.\n",
    );
    let _ = writeln!(
        out,
        "pub(crate) static MESSAGES: [Message; {}] = [",
        names.len()
    );
    for name in &names {
        let msg = &pb.messages[*name];
        let cands = openapi_candidates(&resolver.idx, msg);
        let resolved = resolver.fields(name);
        if cands.is_empty() {
            report.unmatched_messages.push((*name).clone());
        }
        let kind = match special.get(name.as_str()) {
            Some(k) => *k,
            None if is_string_list(msg, !cands.is_empty()) => "StringList",
            None => "Plain",
        };
        let mut by_tag: Vec<usize> = (0..msg.fields.len()).collect();
        by_tag.sort_by_key(|&i| msg.fields[i].tag);
        let _ = write!(
            out,
            "Message{{name:{:?},special:Special::{kind},by_tag:&{:?},fields:&[",
            name, by_tag
        );
        for (f, r) in msg.fields.iter().zip(resolved) {
            let json = r.json.clone().unwrap_or_default();
            if !r.known {
                report
                    .guessed_fields
                    .push(format!("{name}.{} -> {json}", f.rust_name));
            }
            if r.json.is_none() {
                report.inlined.push(format!("{name}.{}", f.rust_name));
            }
            // Go's encoding/json drops a zero scalar only for a non-pointer `omitempty` field.
            let keep_zero = match go_fields.get(&(msg.module.clone(), norm(&msg.name), f.tag)) {
                Some(&(pointer, omitempty)) => pointer || !omitempty,
                // Without Go facts: keep numbers and booleans (they may be pointers), drop
                // empty strings unless the OpenAPI schema requires the field.
                None => {
                    if matches!((&f.shape, &f.ty), (PbShape::Single, PbType::Scalar(_))) {
                        report.no_go_facts.push(format!("{name}.{}", f.rust_name));
                    }
                    !matches!(&f.ty, PbType::Scalar(t) if t == "string" || t == "bytes")
                        || r.required
                }
            };
            let ty = match &f.ty {
                PbType::Scalar(s) => format!("Ty::Scalar(Scalar::{})", scalar_variant(s)?),
                PbType::Message(m) => {
                    let i = index_of
                        .get(m.as_str())
                        .ok_or_else(|| format!("{name}.{}: unknown message {m}", f.rust_name))?;
                    format!("Ty::Message({i})")
                }
            };
            let shape = match &f.shape {
                PbShape::Single => "Shape::Single".to_string(),
                PbShape::Repeated => "Shape::Repeated".to_string(),
                PbShape::Map(k) => format!("Shape::Map(Scalar::{})", scalar_variant(k)?),
            };
            let _ = write!(
                out,
                "Field{{tag:{},json:{:?},ty:{ty},shape:{shape},keep_zero:{keep_zero},packed:{}}},",
                f.tag, json, f.packed
            );
        }
        out.push_str("]},\n");
    }
    out.push_str("];\n");

    // (apiVersion, kind) -> message.
    let mut kinds: BTreeMap<(String, String), usize> = BTreeMap::new();
    let by_norm: HashMap<(String, String), usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let m = &pb.messages[*n];
            ((m.module.clone(), norm(&m.name)), i)
        })
        .collect();
    let find = |module: &str, name: &str| by_norm.get(&(module.to_string(), norm(name))).copied();
    for r in &oa.resources {
        if r.api_version.is_empty() || r.kind.is_empty() || r.module.starts_with("apimachinery") {
            continue;
        }
        if let Some(i) = find(&r.module, &r.name) {
            kinds.insert((r.api_version.clone(), r.kind.clone()), i);
        }
        let list_kind = r
            .list_kind
            .clone()
            .unwrap_or_else(|| format!("{}List", r.kind));
        if let Some(i) = find(&r.module, &list_kind) {
            kinds.insert((r.api_version.clone(), list_kind), i);
        }
    }
    for r in &pb.resources {
        if r.module.starts_with("apimachinery") {
            continue;
        }
        if let Some(i) = find(&r.module, &r.name) {
            kinds
                .entry((r.api_version.clone(), r.kind.clone()))
                .or_insert(i);
        }
        let list_kind = format!("{}List", r.kind);
        if let Some(i) = find(&r.module, &list_kind) {
            kinds.entry((r.api_version.clone(), list_kind)).or_insert(i);
        }
    }
    for (module, name, av, kind) in EXTRA_KINDS {
        let i = find(module, name).ok_or_else(|| format!("k8s-pb lacks {module}.{name}"))?;
        kinds.insert((av.to_string(), kind.to_string()), i);
    }
    let _ = writeln!(
        out,
        "pub(crate) static KINDS: [(&str, &str, u16); {}] = [",
        kinds.len()
    );
    for ((av, kind), i) in &kinds {
        let _ = writeln!(out, "({av:?},{kind:?},{i}),");
    }
    out.push_str("];\n");

    let mut meta = BTreeMap::new();
    for kind in META_KINDS {
        let i = find(META_MODULE, kind).ok_or_else(|| format!("k8s-pb lacks meta/v1 {kind}"))?;
        meta.insert(*kind, i);
    }
    let _ = writeln!(
        out,
        "pub(crate) static META_KINDS: [(&str, u16); {}] = [",
        meta.len()
    );
    for (kind, i) in meta {
        let _ = writeln!(out, "({kind:?},{i}),");
    }
    out.push_str("];\n");
    Ok(out)
}
