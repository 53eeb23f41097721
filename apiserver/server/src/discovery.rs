//! Discovery (mirrors apiserver/pkg/endpoints/discovery and discovery/aggregated): `/api`,
//! `/apis`, group and group-version documents, and aggregated discovery v2, all derived from the
//! install table.

use crate::negotiate::{self, Format, Output};
use crate::state::AppState;
use apiserver_apimachinery::{ApiError, ResourceInfo};
use bytes::Bytes;
use serde_json::{Value, json};

fn subresource_kind(info: &ResourceInfo, sub: &str) -> (String, String, String, Vec<&'static str>) {
    match sub {
        "scale" => (
            "autoscaling".into(),
            "v1".into(),
            "Scale".into(),
            vec!["get", "patch", "update"],
        ),
        "binding" => ("".into(), "v1".into(), "Binding".into(), vec!["create"]),
        "token" => (
            "authentication.k8s.io".into(),
            "v1".into(),
            "TokenRequest".into(),
            vec!["create"],
        ),
        // Served through the kubelet (crate::proxy).
        "log" => ("".into(), "v1".into(), info.kind.into(), vec!["get"]),
        "exec" | "attach" | "portforward" => (
            "".into(),
            "v1".into(),
            match sub {
                "exec" => "PodExecOptions",
                "attach" => "PodAttachOptions",
                _ => "PodPortForwardOptions",
            }
            .into(),
            vec!["create", "get"],
        ),
        "proxy" => (
            "".into(),
            "v1".into(),
            format!("{}ProxyOptions", info.kind),
            vec!["create", "delete", "get", "patch", "update"],
        ),
        "finalize" => (
            info.group.into(),
            info.version.into(),
            info.kind.into(),
            vec!["update"],
        ),
        _ => (
            info.group.into(),
            info.version.into(),
            info.kind.into(),
            vec!["get", "patch", "update"],
        ),
    }
}

/// Group versions in install order; the first version of a group is preferred.
fn groups(resources: &[ResourceInfo]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for r in resources {
        match out.iter_mut().find(|(g, _)| g == r.group) {
            Some((_, vs)) => {
                if !vs.iter().any(|v| v == r.version) {
                    vs.push(r.version.to_string());
                }
            }
            None => out.push((r.group.to_string(), vec![r.version.to_string()])),
        }
    }
    out
}

fn resources_of<'a>(
    resources: &'a [ResourceInfo],
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'a ResourceInfo> {
    resources
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

fn gv_string(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": gv_string(name, v), "version": v}))
        .collect();
    json!({"name": name, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(json!({}))})
}

pub fn api_group_list(state: &AppState) -> Value {
    let api = state.resources();
    let groups: Vec<Value> = groups(&api.resources)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn group(state: &AppState, name: &str) -> Option<Value> {
    let api = state.resources();
    groups(&api.resources)
        .iter()
        .find(|(g, _)| g == name)
        .map(|(g, vs)| {
            let mut v = api_group(g, vs);
            v["kind"] = Value::from("APIGroup");
            v["apiVersion"] = Value::from("v1");
            v
        })
}

/// Upstream's storage version hash: base64 of the first 8 bytes of sha256("group/version/kind").
fn storage_version_hash(r: &ResourceInfo) -> String {
    use sha2::Digest;
    let sum = sha2::Sha256::digest(format!("{}/{}/{}", r.group, r.version, r.kind).as_bytes());
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &sum[..8])
}

pub fn resource_list(state: &AppState, group: &str, version: &str) -> Option<Value> {
    let api = state.resources();
    let mut resources = Vec::new();
    let mut any = false;
    for r in resources_of(&api.resources, group, version) {
        any = true;
        let mut e = json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced(),
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        if r.verbs.len() > 1 {
            e["storageVersionHash"] = Value::from(storage_version_hash(r));
        }
        resources.push(e);
        for sub in &r.subresources {
            let (g, v, k, verbs) = subresource_kind(r, sub);
            let mut s = json!({"name": format!("{}/{}", r.resource, sub), "singularName": "", "namespaced": r.namespaced(), "kind": k, "verbs": verbs});
            // Subresources whose kind is of another group say so (upstream's
            // GroupVersionKindProvider: scale, token).
            if matches!(*sub, "scale" | "token") {
                s["group"] = Value::from(g);
                s["version"] = Value::from(v);
            }
            resources.push(s);
        }
    }
    any.then(|| json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv_string(group, version), "resources": resources}))
}

/// apidiscovery.k8s.io/v2 APIGroupDiscoveryList for `/api` (core) or `/apis` (the rest).
pub fn aggregated(state: &AppState, core: bool, v2beta1: bool) -> Value {
    let api = state.resources();
    let items: Vec<Value> = groups(&api.resources)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let rs: Vec<Value> = resources_of(&api.resources, &g, v)
                        .map(|r| {
                            let mut e = json!({
                                "resource": r.resource,
                                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                                "scope": if r.namespaced() { "Namespaced" } else { "Cluster" },
                                "singularResource": r.singular,
                                "verbs": r.verbs,
                            });
                            if !r.short_names.is_empty() {
                                e["shortNames"] = json!(r.short_names);
                            }
                            if !r.categories.is_empty() {
                                e["categories"] = json!(r.categories);
                            }
                            let subs: Vec<Value> = r
                                .subresources
                                .iter()
                                .map(|s| {
                                    let (sg, sv, sk, verbs) = subresource_kind(r, s);
                                    json!({"subresource": s, "responseKind": {"group": sg, "version": sv, "kind": sk}, "verbs": verbs})
                                })
                                .collect();
                            if !subs.is_empty() {
                                e["subresources"] = Value::from(subs);
                            }
                            e
                        })
                        .collect();
                    json!({"version": v, "resources": rs, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": g, "creationTimestamp": null}, "versions": vs})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": if v2beta1 { "apidiscovery.k8s.io/v2beta1" } else { "apidiscovery.k8s.io/v2" },
        "metadata": {},
        "items": items,
    })
}

/// Encodes a discovery document for the negotiated output.
pub fn respond(doc: &Value, out: Output) -> Result<(String, Bytes), ApiError> {
    let json = serde_json::to_vec(doc).map_err(|e| ApiError::internal(e.to_string()))?;
    match out {
        Output::Discovery { v2beta1, format } => {
            let (base, body) = negotiate::encode(format, &json)?;
            let v = if v2beta1 { "v2beta1" } else { "v2" };
            Ok((
                format!("{base};g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"),
                body,
            ))
        }
        other => {
            let f = if other.format() == Format::Protobuf {
                Format::Json
            } else {
                other.format()
            };
            let (ct, body) = negotiate::encode(f, &json)?;
            Ok((ct.to_string(), body))
        }
    }
}
