//! Protobuf encoding of the Swagger 2.0 document as gnostic's `openapi.v2.Document`
//! (`github.com/google/gnostic-models/openapiv2/OpenAPIv2.proto`), the form client-go's
//! `DiscoveryClient.OpenAPISchema` requests (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`)
//! and decodes with `proto.Unmarshal`. Mirrors `kube-openapi/pkg/handler.ToProtoBinary`.
//!
//! Only what a Kubernetes document uses is encoded: body/query/path parameters, schemas
//! without `oneOf`, vendor extensions. Free-form values (`default`, `enum`, `example`,
//! `x-*` extensions) are carried, as gnostic does, in `Any.yaml`; their JSON text is valid YAML.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A protobuf writer for the handful of wire types the document needs.
struct W(Vec<u8>);

impl W {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }
    fn opt_string(&mut self, field: u32, v: Option<&Value>) {
        if let Some(Value::String(s)) = v {
            self.string(field, s);
        }
    }
    fn strings(&mut self, field: u32, v: Option<&Value>) {
        if let Some(Value::Array(a)) = v {
            for s in a.iter().filter_map(Value::as_str) {
                // Repeated strings keep empty entries.
                self.bytes(field, s.as_bytes());
            }
        }
    }
    fn bool(&mut self, field: u32, v: Option<&Value>) {
        if let Some(Value::Bool(true)) = v {
            self.key(field, 0);
            self.varint(1);
        }
    }
    fn int64(&mut self, field: u32, v: Option<&Value>) {
        if let Some(i) = v.and_then(Value::as_i64).filter(|i| *i != 0) {
            self.key(field, 0);
            self.varint(i as u64);
        }
    }
    fn double(&mut self, field: u32, v: Option<&Value>) {
        if let Some(f) = v.and_then(Value::as_f64).filter(|f| *f != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&f.to_le_bytes());
        }
    }
    fn message(&mut self, field: u32, build: impl FnOnce(&mut W)) {
        let mut inner = W(Vec::new());
        build(&mut inner);
        self.bytes(field, &inner.0);
    }
    /// An `Any` carrying `v` as YAML text (JSON is a YAML subset).
    fn any(&mut self, field: u32, v: &Value) {
        let text = format!("{v}\n");
        self.message(field, |w| w.string(2, &text));
    }
    /// `repeated NamedAny vendor_extension` for the `x-` keys of `obj`.
    fn extensions(&mut self, field: u32, obj: &Map<String, Value>) {
        for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(field, |w| {
                w.string(1, k);
                w.any(2, v);
            });
        }
    }
}

/// Encodes a Swagger 2.0 JSON document as a gnostic `openapi.v2.Document`; the definitions
/// are passed separately (any `definitions` in `doc` is ignored).
pub(crate) fn encode_document(doc: &Value, definitions: &BTreeMap<String, Value>) -> Vec<u8> {
    let mut w = W(Vec::new());
    let Some(d) = doc.as_object() else {
        return w.0;
    };
    w.opt_string(1, d.get("swagger"));
    if let Some(Value::Object(info)) = d.get("info") {
        w.message(2, |w| {
            w.opt_string(1, info.get("title"));
            w.opt_string(2, info.get("version"));
            w.opt_string(3, info.get("description"));
            w.extensions(7, info);
        });
    }
    if let Some(Value::Object(paths)) = d.get("paths") {
        w.message(8, |w| {
            for (path, item) in paths {
                w.message(2, |w| {
                    w.string(1, path);
                    w.message(2, |w| path_item(w, item));
                });
            }
        });
    }
    if !definitions.is_empty() {
        w.message(9, |w| {
            for (name, s) in definitions {
                w.message(1, |w| {
                    w.string(1, name);
                    w.message(2, |w| schema(w, s));
                });
            }
        });
    }
    if let Some(Value::Array(reqs)) = d.get("security") {
        for req in reqs.iter().filter_map(Value::as_object) {
            w.message(12, |w| {
                for (name, scopes) in req {
                    w.message(1, |w| {
                        w.string(1, name);
                        w.message(2, |w| w.strings(1, Some(scopes)));
                    });
                }
            });
        }
    }
    if let Some(Value::Object(sec)) = d.get("securityDefinitions") {
        w.message(13, |w| {
            for (name, def) in sec {
                w.message(1, |w| {
                    w.string(1, name);
                    // SecurityDefinitionsItem.api_key_security
                    w.message(2, |w| {
                        w.message(2, |w| {
                            w.opt_string(1, def.get("type"));
                            w.opt_string(2, def.get("name"));
                            w.opt_string(3, def.get("in"));
                            w.opt_string(4, def.get("description"));
                        })
                    });
                });
            }
        });
    }
    w.extensions(16, d);
    w.0
}

fn path_item(w: &mut W, item: &Value) {
    let Some(item) = item.as_object() else {
        return;
    };
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(Value::Object(op)) = item.get(method) {
            w.message(field, |w| operation(w, op));
        }
    }
    parameters(w, 9, item.get("parameters"));
    w.extensions(10, item);
}

fn operation(w: &mut W, op: &Map<String, Value>) {
    w.strings(1, op.get("tags"));
    w.opt_string(2, op.get("summary"));
    w.opt_string(3, op.get("description"));
    w.opt_string(5, op.get("operationId"));
    w.strings(6, op.get("produces"));
    w.strings(7, op.get("consumes"));
    parameters(w, 8, op.get("parameters"));
    if let Some(Value::Object(responses)) = op.get("responses") {
        w.message(9, |w| {
            for (code, resp) in responses {
                w.message(1, |w| {
                    w.string(1, code);
                    // ResponseValue.response
                    w.message(2, |w| {
                        w.message(1, |w| {
                            w.opt_string(1, resp.get("description"));
                            if let Some(s) = resp.get("schema") {
                                // SchemaItem.schema
                                w.message(2, |w| w.message(1, |w| schema(w, s)));
                            }
                        })
                    });
                });
            }
        });
    }
    w.strings(10, op.get("schemes"));
    w.bool(11, op.get("deprecated"));
    w.extensions(13, op);
}

fn parameters(w: &mut W, field: u32, params: Option<&Value>) {
    let Some(Value::Array(params)) = params else {
        return;
    };
    for p in params.iter().filter_map(Value::as_object) {
        // ParametersItem
        w.message(field, |w| {
            if let Some(Value::String(r)) = p.get("$ref") {
                w.message(2, |w| w.string(1, r));
                return;
            }
            // ParametersItem.parameter
            w.message(1, |w| parameter(w, p));
        });
    }
}

fn parameter(w: &mut W, p: &Map<String, Value>) {
    let location = p.get("in").and_then(Value::as_str).unwrap_or("");
    if location == "body" {
        w.message(1, |w| {
            w.opt_string(1, p.get("description"));
            w.opt_string(2, p.get("name"));
            w.opt_string(3, p.get("in"));
            w.bool(4, p.get("required"));
            if let Some(s) = p.get("schema") {
                w.message(5, |w| schema(w, s));
            }
            w.extensions(6, p);
        });
        return;
    }
    // NonBodyParameter: header=1, formData=2, query=3, path=4. Query and formData share one
    // layout (with allow_empty_value at 5); header and path share the other.
    let (choice, with_allow_empty) = match location {
        "header" => (1, false),
        "formData" => (2, true),
        "path" => (4, false),
        _ => (3, true),
    };
    w.message(2, |w| {
        w.message(choice, |w| {
            w.bool(1, p.get("required"));
            w.opt_string(2, p.get("in"));
            w.opt_string(3, p.get("description"));
            w.opt_string(4, p.get("name"));
            let base = if with_allow_empty {
                w.bool(5, p.get("allowEmptyValue"));
                6
            } else {
                5
            };
            w.opt_string(base, p.get("type"));
            w.opt_string(base + 1, p.get("format"));
            w.opt_string(base + 3, p.get("collectionFormat"));
            if let Some(d) = p.get("default") {
                w.any(base + 4, d);
            }
            w.bool(base + 14, p.get("uniqueItems"));
            if let Some(Value::Array(e)) = p.get("enum") {
                for v in e {
                    w.any(base + 15, v);
                }
            }
            w.extensions(base + 17, p);
        });
    });
}

/// Encodes a JSON schema as gnostic's `Schema`.
fn schema(w: &mut W, s: &Value) {
    let Some(s) = s.as_object() else {
        return;
    };
    w.opt_string(1, s.get("$ref"));
    w.opt_string(2, s.get("format"));
    w.opt_string(3, s.get("title"));
    w.opt_string(4, s.get("description"));
    if let Some(d) = s.get("default") {
        w.any(5, d);
    }
    w.double(6, s.get("multipleOf"));
    w.double(7, s.get("maximum"));
    w.bool(8, s.get("exclusiveMaximum"));
    w.double(9, s.get("minimum"));
    w.bool(10, s.get("exclusiveMinimum"));
    w.int64(11, s.get("maxLength"));
    w.int64(12, s.get("minLength"));
    w.opt_string(13, s.get("pattern"));
    w.int64(14, s.get("maxItems"));
    w.int64(15, s.get("minItems"));
    w.bool(16, s.get("uniqueItems"));
    w.int64(17, s.get("maxProperties"));
    w.int64(18, s.get("minProperties"));
    w.strings(19, s.get("required"));
    if let Some(Value::Array(e)) = s.get("enum") {
        for v in e {
            w.any(20, v);
        }
    }
    match s.get("additionalProperties") {
        Some(v @ Value::Object(_)) => w.message(21, |w| w.message(1, |w| schema(w, v))),
        Some(Value::Bool(b)) => w.message(21, |w| {
            w.key(2, 0);
            w.varint(u64::from(*b));
        }),
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => w.message(22, |w| w.string(1, t)),
        Some(v @ Value::Array(_)) => w.message(22, |w| w.strings(1, Some(v))),
        _ => {}
    }
    match s.get("items") {
        Some(v @ Value::Object(_)) => w.message(23, |w| w.message(1, |w| schema(w, v))),
        Some(Value::Array(a)) => w.message(23, |w| {
            for v in a {
                w.message(1, |w| schema(w, v));
            }
        }),
        _ => {}
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for v in all {
            w.message(24, |w| schema(w, v));
        }
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        w.message(25, |w| {
            for (name, p) in props {
                w.message(1, |w| {
                    w.string(1, name);
                    w.message(2, |w| schema(w, p));
                });
            }
        });
    }
    w.opt_string(26, s.get("discriminator"));
    w.bool(27, s.get("readOnly"));
    if let Some(Value::Object(docs)) = s.get("externalDocs") {
        w.message(29, |w| {
            w.opt_string(1, docs.get("description"));
            w.opt_string(2, docs.get("url"));
        });
    }
    if let Some(e) = s.get("example") {
        w.any(30, e);
    }
    w.extensions(31, s);
}
