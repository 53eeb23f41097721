//! The resource handlers, one per verb (mirrors apiserver/pkg/endpoints/handlers/{get,create,
//! update,patch,delete}.go): parse options, call the endpoint, encode the answer.

use crate::negotiate::{self, Format, IncludeObject, Output};
use crate::request_info::RequestInfo;
use crate::state::AppState;
use apiserver_apimachinery::ApiError;
use apiserver_apimachinery::selector::{FieldSelector, LabelSelector};
use apiserver_registry::context::{
    DeleteOptions, FieldValidation, ListOptions, PatchType, RequestContext, WriteOptions,
};
use apiserver_registry::rest::{ListOutput, Rest, WriteOutput};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;

pub type Query = HashMap<String, String>;

pub fn parse_query(q: Option<&str>) -> Query {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// Renders an error as `metav1.Status` in the client's format.
pub fn error_response(e: &ApiError, format: Format) -> Response {
    let status = e.to_status();
    let mut json = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
    if let Some(o) = json.as_object_mut() {
        o.insert("kind".into(), Value::from("Status"));
        o.insert("apiVersion".into(), Value::from("v1"));
    }
    let bytes = serde_json::to_vec(&json).unwrap_or_default();
    let (ct, body) = match negotiate::encode(
        if format == Format::Yaml {
            Format::Json
        } else {
            format
        },
        &bytes,
    ) {
        Ok(x) => x,
        Err(_) => (negotiate::JSON, Bytes::from(bytes)),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() =
        StatusCode::from_u16(e.http_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    if let Some(s) = e.retry_after_seconds {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
    r
}

pub fn raw_response(code: u16, content_type: &str, body: Bytes) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

fn add_warnings(r: &mut Response, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("Warning", v);
        }
    }
}

fn include_object(q: &Query) -> IncludeObject {
    match q.get("includeObject").map(String::as_str) {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    }
}

fn partial_metadata(item: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": item.get("metadata").cloned().unwrap_or(json!({}))})
}

fn to_value(b: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError::internal(e.to_string()))
}

/// A Table for `items`, with list metadata.
pub fn table_json(
    rest: &dyn Rest,
    items: &[Bytes],
    meta: Value,
    include: IncludeObject,
    v1beta1: bool,
) -> Result<Value, ApiError> {
    let parts = rest.table(items)?;
    let mut rows = Vec::with_capacity(parts.rows.len());
    for row in parts.rows {
        let mut r = serde_json::Map::new();
        r.insert("cells".into(), Value::from(row.cells));
        if !row.conditions.is_empty() {
            r.insert("conditions".into(), Value::from(row.conditions));
        }
        match include {
            IncludeObject::None => {}
            IncludeObject::Metadata => {
                r.insert("object".into(), partial_metadata(&to_value(&row.object)?));
            }
            IncludeObject::Object => {
                r.insert("object".into(), to_value(&row.object)?);
            }
        }
        rows.push(Value::Object(r));
    }
    Ok(json!({
        "kind": "Table",
        "apiVersion": if v1beta1 { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": meta,
        "columnDefinitions": parts.columns,
        "rows": rows,
    }))
}

/// Encodes one object (already JSON) for the negotiated output.
pub fn object_response(
    rest: &dyn Rest,
    code: u16,
    json: &Bytes,
    out: Output,
    q: &Query,
    warnings: &[String],
) -> Response {
    let res: Result<Response, ApiError> = (|| {
        let (ct, body) = match out {
            Output::Plain(f) => negotiate::encode(f, json)?,
            Output::Table { v1beta1 } => {
                let v = to_value(json)?;
                // Statuses (e.g. the answer to a delete) are not tabulated.
                if v.get("kind").and_then(Value::as_str) == Some("Status") {
                    negotiate::encode(Format::Json, json)?
                } else {
                    let meta = json!({"resourceVersion": v.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::from(""))});
                    let t = table_json(
                        rest,
                        std::slice::from_ref(json),
                        meta,
                        include_object(q),
                        v1beta1,
                    )?;
                    (
                        negotiate::JSON,
                        Bytes::from(
                            serde_json::to_vec(&t)
                                .map_err(|e| ApiError::internal(e.to_string()))?,
                        ),
                    )
                }
            }
            Output::PartialMetadata { format, .. } => {
                let pm = partial_metadata(&to_value(json)?);
                negotiate::encode(
                    format,
                    &serde_json::to_vec(&pm).map_err(|e| ApiError::internal(e.to_string()))?,
                )?
            }
            Output::Discovery { format, .. } => negotiate::encode(format, json)?,
        };
        let mut r = raw_response(code, ct, body);
        add_warnings(&mut r, warnings);
        Ok(r)
    })();
    res.unwrap_or_else(|e| error_response(&e, Format::Json))
}

fn list_meta(l: &ListOutput) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "resourceVersion".into(),
        Value::from(l.resource_version.to_string()),
    );
    if let Some(c) = &l.continue_token {
        m.insert("continue".into(), Value::from(c.clone()));
    }
    if let Some(r) = l.remaining {
        m.insert("remainingItemCount".into(), Value::from(r));
    }
    Value::Object(m)
}

/// Assembles a list without re-encoding items in the JSON case.
pub fn list_response(
    rest: &dyn Rest,
    l: ListOutput,
    out: Output,
    q: &Query,
) -> Result<Response, ApiError> {
    let info = rest.info();
    match out {
        Output::Table { v1beta1 } => {
            let t = table_json(rest, &l.items, list_meta(&l), include_object(q), v1beta1)?;
            Ok(raw_response(
                200,
                negotiate::JSON,
                Bytes::from(serde_json::to_vec(&t).map_err(|e| ApiError::internal(e.to_string()))?),
            ))
        }
        Output::PartialMetadata { format, .. } => {
            let items: Result<Vec<Value>, ApiError> = l
                .items
                .iter()
                .map(|i| Ok(partial_metadata(&to_value(i)?)))
                .collect();
            let v = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta(&l), "items": items?});
            let (ct, b) = negotiate::encode(
                format,
                &serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?,
            )?;
            Ok(raw_response(200, ct, b))
        }
        Output::Plain(format) | Output::Discovery { format, .. } => {
            let mut buf = Vec::with_capacity(l.items.iter().map(Bytes::len).sum::<usize>() + 256);
            buf.extend_from_slice(b"{\"kind\":");
            buf.extend_from_slice(
                serde_json::to_string(&info.list_kind)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            buf.extend_from_slice(b",\"apiVersion\":");
            buf.extend_from_slice(
                serde_json::to_string(&info.api_version())
                    .unwrap_or_default()
                    .as_bytes(),
            );
            buf.extend_from_slice(b",\"metadata\":");
            buf.extend_from_slice(
                serde_json::to_string(&list_meta(&l))
                    .unwrap_or_default()
                    .as_bytes(),
            );
            buf.extend_from_slice(b",\"items\":[");
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                buf.extend_from_slice(item);
            }
            buf.extend_from_slice(b"]}");
            let (ct, b) = negotiate::encode(format, &buf)?;
            Ok(raw_response(200, ct, b))
        }
    }
}

pub fn list_options(q: &Query) -> Result<ListOptions, ApiError> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let fields = FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let limit = match q.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {s:?}")))?
            .max(0),
    };
    let timeout_seconds = match q.get("timeoutSeconds").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {s:?}")))?,
        ),
    };
    let send_initial_events = match q.get("sendInitialEvents").map(String::as_str) {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    Ok(ListOptions {
        labels,
        fields,
        resource_version: q.get("resourceVersion").cloned().unwrap_or_default(),
        resource_version_match: q.get("resourceVersionMatch").cloned().unwrap_or_default(),
        limit,
        continue_token: q.get("continue").cloned().unwrap_or_default(),
        send_initial_events,
        allow_bookmarks: q.get("allowWatchBookmarks").map(String::as_str) == Some("true"),
        timeout_seconds,
    })
}

fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid dry run value: {other:?}; supported values: \"All\""
        ))),
    }
}

/// Upstream's default field manager: the User-Agent up to its first `/` (kubectl sends
/// `kubectl/v1.37.1 (linux/amd64) ...`), at most 128 bytes.
fn manager_from_user_agent(headers: &HeaderMap) -> Option<String> {
    let ua = headers.get(http::header::USER_AGENT)?.to_str().ok()?;
    let prefix = ua.split('/').next().unwrap_or("").trim();
    let mut m: String = prefix.chars().take(128).collect();
    while m.len() > 128 {
        m.pop();
    }
    (!m.is_empty()).then_some(m)
}

pub fn write_options(q: &Query) -> Result<WriteOptions, ApiError> {
    let fv = q
        .get("fieldValidation")
        .map(String::as_str)
        .unwrap_or("Warn");
    let field_validation = FieldValidation::parse(fv).ok_or_else(|| {
        ApiError::bad_request(format!(
            "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got: {fv:?}"
        ))
    })?;
    let field_manager = q.get("fieldManager").cloned();
    if let Some(m) = &field_manager {
        if m.len() > 128 {
            return Err(ApiError::invalid(
                "",
                "",
                "",
                &[apiserver_apimachinery::FieldError::too_long(
                    &apiserver_apimachinery::FieldPath::root("fieldManager"),
                    128,
                )],
            ));
        }
    }
    let force = match q.get("force").map(String::as_str) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid boolean value for force: {other:?}"
            )));
        }
    };
    Ok(WriteOptions {
        dry_run: dry_run(q)?,
        field_manager,
        field_validation,
        force,
        managed_fields_done: false,
    })
}

fn delete_options(q: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let mut o = DeleteOptions::default();
    if !body.is_empty() {
        let d: k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions =
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        o.grace_period_seconds = d.grace_period_seconds;
        o.propagation_policy = d.propagation_policy;
        o.orphan_dependents = d.orphan_dependents;
        if let Some(p) = d.preconditions {
            o.precondition_uid = p.uid;
            o.precondition_resource_version = p.resource_version;
        }
        o.dry_run = d.dry_run.is_some_and(|v| v.iter().any(|x| x == "All"));
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace_period_seconds = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        );
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation_policy = Some(p.clone());
    }
    if let Some(v) = q.get("orphanDependents") {
        o.orphan_dependents = Some(v == "true");
    }
    o.dry_run = o.dry_run || dry_run(q)?;
    Ok(o)
}

fn write_response(rest: &dyn Rest, w: WriteOutput, out: Output, q: &Query) -> Response {
    object_response(rest, w.code, &w.body, out, q, &w.warnings)
}

/// Serves one resource request.
pub async fn serve_resource(
    state: &AppState,
    info: &RequestInfo,
    ctx: RequestContext,
    q: &Query,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let fallback_format = if accept.is_some_and(|a| a.starts_with(negotiate::PROTOBUF)) {
        Format::Protobuf
    } else {
        Format::Json
    };
    let rest = match state.endpoint(
        &info.group,
        &info.version,
        &info.resource,
        &info.subresource,
    ) {
        Some(r) => r,
        None => {
            let e = ApiError::not_found("", "", "")
                .with_message("the server could not find the requested resource");
            return error_response(&e, fallback_format);
        }
    };
    let is_list = matches!(info.verb.as_str(), "list" | "watch" | "deletecollection");
    let out = match negotiate::negotiate_for(
        accept,
        info.subresource.is_empty() || info.subresource == "status",
        is_list,
        false,
        rest.protobuf(),
    ) {
        Ok(o) => o,
        Err(e) => return error_response(&e, Format::Json),
    };
    let format = out.format();
    if rest.info().namespaced()
        && info.namespace.is_none()
        && !matches!(info.verb.as_str(), "list" | "watch" | "deletecollection")
    {
        if !(info.verb == "create" && info.resource == "namespaces") {
            let e = ApiError::not_found("", "", "")
                .with_message("the server could not find the requested resource");
            return error_response(&e, format);
        }
    }
    if !rest.info().namespaced() && info.namespace.is_some() {
        let e = ApiError::not_found("", "", "")
            .with_message("the server could not find the requested resource");
        return error_response(&e, format);
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let result: Result<Response, ApiError> = async {
        let name = info.name.as_deref().unwrap_or("");
        match info.verb.as_str() {
            "get" => {
                let json = rest.get(&ctx, name).await?;
                Ok(object_response(rest.as_ref(), 200, &json, out, q, &[]))
            }
            "list" => {
                let opts = list_options(q)?;
                let l = rest.list(&ctx, &opts).await?;
                list_response(rest.as_ref(), l, out, q)
            }
            "watch" => {
                let mut opts = list_options(q)?;
                if let Some(n) = &info.name {
                    // A watch of one object is a watch with a metadata.name field selector.
                    match opts.fields.exact("metadata.name") {
                        Some(existing) if existing != n => {
                            return Err(ApiError::bad_request(format!(
                                "fieldSelector metadata.name={existing} conflicts with the name in the URL ({n})"
                            )));
                        }
                        Some(_) => {}
                        None => opts.fields.requirements.push(apiserver_apimachinery::selector::FieldRequirement {
                            field: "metadata.name".into(),
                            value: n.clone(),
                            negate: false,
                        }),
                    }
                }
                crate::watch::serve(rest.clone(), &ctx, opts, out, q.clone()).await
            }
            "create" => {
                let mut opts = write_options(q)?;
                if opts.field_manager.is_none() {
                    opts.field_manager = manager_from_user_agent(headers);
                }
                if opts.force {
                    return Err(ApiError::bad_request("force is only supported for apply requests"));
                }
                let json = negotiate::body_to_json(content_type, body)?;
                let sub_name = (!info.subresource.is_empty()).then_some(name);
                let w = rest.create(&ctx, sub_name, &json, &opts).await?;
                Ok(write_response(rest.as_ref(), w, out, q))
            }
            "update" => {
                let mut opts = write_options(q)?;
                if opts.field_manager.is_none() {
                    opts.field_manager = manager_from_user_agent(headers);
                }
                if opts.force {
                    return Err(ApiError::bad_request("force is only supported for apply requests"));
                }
                let json = negotiate::body_to_json(content_type, body)?;
                let w = rest.update(&ctx, name, &json, &opts).await?;
                Ok(write_response(rest.as_ref(), w, out, q))
            }
            "patch" => {
                let mut opts = write_options(q)?;
                let ct = content_type.unwrap_or("");
                let ty = PatchType::from_content_type(ct).ok_or_else(|| {
                    ApiError::unsupported_media_type(ct).with_message(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct})"
                    ))
                })?;
                if ty == PatchType::Apply && opts.field_manager.as_deref().is_none_or(str::is_empty) {
                    return Err(ApiError::bad_request("PATCH requests with apply content type must specify fieldManager"));
                }
                if ty != PatchType::Apply && opts.force {
                    return Err(ApiError::bad_request("force is only supported for apply requests"));
                }
                if opts.field_manager.is_none() {
                    opts.field_manager = manager_from_user_agent(headers);
                }
                // Strict decoding of an apply configuration (upstream: yaml.UnmarshalStrict in
                // the apply patcher): duplicate keys are an error (Strict) or a warning (Warn).
                let dupes = match (ty, opts.field_validation) {
                    (PatchType::Apply, FieldValidation::Strict | FieldValidation::Warn) => crate::yamlstrict::duplicate_keys_error(&body),
                    _ => None,
                };
                if let (Some(msg), FieldValidation::Strict) = (&dupes, opts.field_validation) {
                    return Err(ApiError::bad_request(format!("error strict decoding YAML: {msg}")));
                }
                let json = if ty == PatchType::Apply { negotiate::body_to_json(Some(ct), body)? } else { body };
                let mut w = rest.patch(&ctx, name, ty, &json, &opts).await?;
                w.warnings.extend(dupes);
                Ok(write_response(rest.as_ref(), w, out, q))
            }
            "delete" => {
                let json = if body.is_empty() { body } else { negotiate::body_to_json(content_type, body)? };
                let opts = delete_options(q, &json)?;
                let w = rest.delete(&ctx, name, &opts).await?;
                Ok(write_response(rest.as_ref(), w, out, q))
            }
            "deletecollection" => {
                let json = if body.is_empty() { body } else { negotiate::body_to_json(content_type, body)? };
                let opts = delete_options(q, &json)?;
                let lopts = list_options(q)?;
                let b = rest.delete_collection(&ctx, &lopts, &opts).await?;
                Ok(object_response(rest.as_ref(), 200, &b, Output::Plain(format), q, &[]))
            }
            other => Err(ApiError::method_not_allowed(format!("verb {other:?} is not supported")).with_code(405)),
        }
    }
    .await;
    result.unwrap_or_else(|e| error_response(&e, format))
}

pub trait WithMessage {
    fn with_message(self, m: impl Into<String>) -> Self;
}

impl WithMessage for ApiError {
    fn with_message(mut self, m: impl Into<String>) -> Self {
        self.message = m.into();
        self.target = None;
        self
    }
}
