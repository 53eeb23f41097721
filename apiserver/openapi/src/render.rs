//! Renders the format-neutral paths and the Swagger 2.0 definitions into the two published
//! formats: Swagger 2.0 (`/openapi/v2`, mirrors `kube-openapi/pkg/builder`) and OpenAPI 3.0
//! per group version (`/openapi/v3/...`, mirrors `kube-openapi/pkg/builder3` and the
//! v2→v3 schema differences visible in `api/openapi-spec/v3/*.json`).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::params::{In, Param};
use crate::paths::{Operation, PathItem, Paths, Response};
use crate::schemas::{self, INT_OR_STRING, QUANTITY, V2_PREFIX};

pub(crate) const V3_PREFIX: &str = "#/components/schemas/";

fn bearer_token() -> Value {
    json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    })
}

fn info(version: &str) -> Value {
    json!({ "title": "Kubernetes", "version": version })
}

fn gvk_ext(op: &Operation, out: &mut Map<String, Value>) {
    if let Some(action) = op.action {
        out.insert("x-kubernetes-action".into(), action.extension().into());
    }
    if let Some(gvk) = &op.gvk {
        out.insert("x-kubernetes-group-version-kind".into(), gvk.to_json());
    }
}

fn strings(list: &[&str]) -> Value {
    Value::Array(list.iter().map(|s| Value::from(*s)).collect())
}

// ---------------------------------------------------------------- Swagger 2.0

fn v2_param(p: &Param) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), p.description.clone().into());
    m.insert(
        "in".into(),
        match p.location {
            In::Path => "path",
            In::Query => "query",
        }
        .into(),
    );
    m.insert("name".into(), p.name.into());
    if p.location == In::Path {
        m.insert("required".into(), true.into());
    }
    m.insert("type".into(), p.ty.into());
    m.insert("uniqueItems".into(), true.into());
    Value::Object(m)
}

fn v2_response_schema(r: &Response) -> Value {
    match r {
        Response::Definition(d) => json!({ "$ref": format!("{V2_PREFIX}{d}") }),
        Response::Text => json!({ "type": "string" }),
    }
}

fn v2_operation(op: &Operation) -> Value {
    let mut m = Map::new();
    m.insert("consumes".into(), strings(op.consumes));
    m.insert("description".into(), op.description.clone().into());
    m.insert("operationId".into(), op.id.clone().into());
    let mut params: Vec<Value> = Vec::new();
    if let Some(b) = &op.body {
        params.push(json!({
            "in": "body",
            "name": "body",
            "required": b.required,
            "schema": { "$ref": format!("{V2_PREFIX}{}", b.definition) },
        }));
    }
    params.extend(op.params.iter().map(v2_param));
    if !params.is_empty() {
        m.insert("parameters".into(), Value::Array(params));
    }
    m.insert("produces".into(), strings(op.produces));
    let mut responses = Map::new();
    for (code, desc) in op.codes {
        let mut r = Map::new();
        r.insert("description".into(), (*desc).into());
        if *code < 300 {
            r.insert("schema".into(), v2_response_schema(&op.response));
        }
        responses.insert(code.to_string(), Value::Object(r));
    }
    m.insert("responses".into(), Value::Object(responses));
    m.insert("schemes".into(), json!(["https"]));
    m.insert("tags".into(), json!([op.tag]));
    gvk_ext(op, &mut m);
    Value::Object(m)
}

fn v2_path_item(item: &PathItem) -> Value {
    let mut m = Map::new();
    for op in &item.ops {
        m.insert(op.method.into(), v2_operation(op));
    }
    if !item.params.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(item.params.iter().map(v2_param).collect()),
        );
    }
    Value::Object(m)
}

/// Appends `"name":<json>` entries, comma separated, to `out`.
fn push_entries<'a>(out: &mut String, entries: impl Iterator<Item = (&'a str, String)>) {
    for (i, (name, json)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::from(name).to_string());
        out.push(':');
        out.push_str(&json);
    }
}

/// The whole Swagger 2.0 document, as JSON and as gnostic protobuf. The JSON is assembled
/// from pieces so the (large) definitions are not copied into one more value tree.
pub(crate) fn v2_document(
    paths: &Paths,
    definitions: &BTreeMap<String, Value>,
    version: &str,
) -> (Vec<u8>, Vec<u8>) {
    let paths: Map<String, Value> = paths
        .iter()
        .map(|(k, v)| (k.clone(), v2_path_item(v)))
        .collect();
    let skeleton = json!({
        "info": info(version),
        "paths": paths,
        "security": [{ "BearerToken": [] }],
        "securityDefinitions": { "BearerToken": bearer_token() },
        "swagger": "2.0",
    });
    let proto = crate::proto::encode_document(&skeleton, definitions);
    let mut out = String::from("{\"definitions\":{");
    push_entries(
        &mut out,
        definitions.iter().map(|(n, s)| (n.as_str(), s.to_string())),
    );
    out.push('}');
    for key in [
        "info",
        "paths",
        "security",
        "securityDefinitions",
        "swagger",
    ] {
        out.push_str(&format!(",\"{key}\":{}", skeleton[key]));
    }
    out.push('}');
    (out.into_bytes(), proto)
}

// ---------------------------------------------------------------- OpenAPI 3.0

fn v3_param(p: &Param) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), p.description.clone().into());
    m.insert(
        "in".into(),
        match p.location {
            In::Path => "path",
            In::Query => "query",
        }
        .into(),
    );
    m.insert("name".into(), p.name.into());
    if p.location == In::Path {
        m.insert("required".into(), true.into());
    }
    m.insert(
        "schema".into(),
        json!({ "type": p.ty, "uniqueItems": true }),
    );
    Value::Object(m)
}

fn v3_content(types: &[&str], schema: &Value) -> Value {
    let m: Map<String, Value> = types
        .iter()
        .map(|t| (t.to_string(), json!({ "schema": schema })))
        .collect();
    Value::Object(m)
}

fn v3_operation(op: &Operation) -> Value {
    let mut m = Map::new();
    m.insert("description".into(), op.description.clone().into());
    m.insert("operationId".into(), op.id.clone().into());
    if !op.params.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(op.params.iter().map(v3_param).collect()),
        );
    }
    if let Some(b) = &op.body {
        let schema = json!({ "$ref": format!("{V3_PREFIX}{}", b.definition) });
        let mut rb = Map::new();
        rb.insert("content".into(), v3_content(op.consumes, &schema));
        if b.required {
            rb.insert("required".into(), true.into());
        }
        m.insert("requestBody".into(), Value::Object(rb));
    }
    let schema = match &op.response {
        Response::Definition(d) => json!({ "$ref": format!("{V3_PREFIX}{d}") }),
        Response::Text => json!({ "type": "string" }),
    };
    let mut responses = Map::new();
    for (code, desc) in op.codes {
        let mut r = Map::new();
        if *code < 300 {
            r.insert("content".into(), v3_content(op.produces, &schema));
        }
        r.insert("description".into(), (*desc).into());
        responses.insert(code.to_string(), Value::Object(r));
    }
    m.insert("responses".into(), Value::Object(responses));
    m.insert("tags".into(), json!([op.tag]));
    gvk_ext(op, &mut m);
    Value::Object(m)
}

fn v3_path_item(item: &PathItem) -> Value {
    let mut m = Map::new();
    for op in &item.ops {
        m.insert(op.method.into(), v3_operation(op));
    }
    if !item.params.is_empty() {
        m.insert(
            "parameters".into(),
            Value::Array(item.params.iter().map(v3_param).collect()),
        );
    }
    Value::Object(m)
}

/// Converts one Swagger 2.0 definition to its OpenAPI 3 form: references point into
/// `components/schemas`, a reference with sibling keywords moves into `allOf` (OpenAPI 3.0
/// ignores siblings of `$ref`), and IntOrString/Quantity become `oneOf` alternatives.
pub(crate) fn v3_schema(name: &str, v2: &Value) -> Value {
    let mut s = v2.clone();
    schemas::rewrite_schemas(&mut s, &mut |obj| {
        let Some(Value::String(r)) = obj.get("$ref") else {
            return;
        };
        let target = match r.strip_prefix(V2_PREFIX) {
            Some(t) => format!("{V3_PREFIX}{t}"),
            None => r.clone(),
        };
        if obj.len() == 1 {
            obj.insert("$ref".into(), target.into());
            return;
        }
        let mut wrapped = Map::new();
        wrapped.insert("allOf".into(), json!([{ "$ref": target }]));
        for (k, v) in std::mem::take(obj) {
            if k != "$ref" {
                wrapped.insert(k, v);
            }
        }
        *obj = wrapped;
    });
    if let Value::Object(obj) = &mut s {
        match name {
            INT_OR_STRING => {
                obj.remove("type");
                obj.insert(
                    "oneOf".into(),
                    json!([{ "type": "integer" }, { "type": "string" }]),
                );
            }
            QUANTITY => {
                obj.remove("type");
                obj.insert(
                    "oneOf".into(),
                    json!([{ "type": "string" }, { "type": "number" }]),
                );
            }
            _ => {}
        }
    }
    s
}

/// The OpenAPI 3 document of one group version: its paths and every definition they reach.
/// `schemas` holds every definition already converted by [`v3_schema`] and serialised.
pub(crate) fn v3_document(
    paths: &Paths,
    definitions: &BTreeMap<String, Value>,
    schemas: &BTreeMap<&str, String>,
    version: &str,
) -> String {
    let mut roots: Vec<String> = Vec::new();
    for item in paths.values() {
        for op in &item.ops {
            if let Response::Definition(d) = &op.response {
                roots.push(d.clone());
            }
            if let Some(b) = &op.body {
                roots.push(b.definition.clone());
            }
        }
    }
    let reachable = schemas::closure(definitions, roots);
    let paths: Map<String, Value> = paths
        .iter()
        .map(|(k, v)| (k.clone(), v3_path_item(v)))
        .collect();
    let mut out = String::from("{\"components\":{\"schemas\":{");
    push_entries(
        &mut out,
        reachable
            .iter()
            .filter_map(|n| schemas.get(n.as_str()).map(|s| (n.as_str(), s.clone()))),
    );
    out.push_str(&format!(
        "}},\"securitySchemes\":{}}},\"info\":{},\"openapi\":\"3.0.0\",\"paths\":{}}}",
        json!({ "BearerToken": bearer_token() }),
        info(version),
        Value::Object(paths),
    ));
    out
}
