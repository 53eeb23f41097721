//! ConfigMap, Secret, Namespace, ServiceAccount and Endpoints validation (mirrors
//! ValidateConfigMap*, ValidateSecret*, ValidateNamespace*, ValidateEndpoints* in
//! pkg/apis/core/validation/validation.go).

use super::containers;
use super::service::non_special_ip;
use crate::util::{self, Errs};
use apiserver_apimachinery::{FieldError, FieldPath};
use k8s_openapi::api::core::v1 as api;

/// Maximum total size of a ConfigMap's or Secret's data (`core.MaxSecretSize`).
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

/// `IsConfigMapKey`.
pub(crate) fn config_key_msgs(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        out.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    if key == "." {
        out.push("must not be '.'".to_string());
    } else if key == ".." {
        out.push("must not be '..'".to_string());
    } else if key.starts_with("..") {
        out.push("must not start with '..'".to_string());
    }
    out
}

fn keys<'a>(errs: &mut Errs, keys: impl Iterator<Item = &'a String>, path: &FieldPath) {
    for k in keys {
        for m in config_key_msgs(k) {
            errs.push(FieldError::invalid_str(&path.key(k), k, m));
        }
    }
}

/// `ValidateConfigMap` minus object metadata.
pub(crate) fn validate_config_map(cm: &api::ConfigMap) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &cm.metadata);
    let data_path = FieldPath::root("data");
    let mut total = 0;
    for (k, v) in cm.data.iter().flatten() {
        keys(&mut errs, std::iter::once(k), &data_path);
        if cm.binary_data.as_ref().is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid_str(
                &data_path.key(k),
                k,
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        keys(
            &mut errs,
            std::iter::once(k),
            &FieldPath::root("binaryData"),
        );
        total += v.0.len();
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&FieldPath::root(""), MAX_DATA_SIZE));
    }
    errs
}

const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

/// `ValidateConfigMapUpdate` minus object metadata.
pub(crate) fn validate_config_map_update(new: &api::ConfigMap, old: &api::ConfigMap) -> Errs {
    let mut errs = Vec::new();
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &FieldPath::root("immutable"),
                IMMUTABLE_SET,
            ));
        }
        if new.data.clone().unwrap_or_default() != old.data.clone().unwrap_or_default() {
            errs.push(FieldError::forbidden(
                &FieldPath::root("data"),
                IMMUTABLE_SET,
            ));
        }
        if new.binary_data.clone().unwrap_or_default()
            != old.binary_data.clone().unwrap_or_default()
        {
            errs.push(FieldError::forbidden(
                &FieldPath::root("binaryData"),
                IMMUTABLE_SET,
            ));
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

/// `ValidateSecret` minus object metadata. `stringData` is merged into `data` first, as
/// upstream's conversion does.
pub(crate) fn validate_secret(secret: &api::Secret) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &secret.metadata);
    let data = merged_data(secret);
    let data_path = FieldPath::root("data");
    let mut total = 0;
    for (k, v) in &data {
        keys(&mut errs, std::iter::once(k), &data_path);
        total += v.len();
    }
    if total > MAX_DATA_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_DATA_SIZE));
    }
    let ann = util::map_or_empty(&secret.metadata.annotations);
    match util::s(&secret.type_) {
        "kubernetes.io/service-account-token"
            if ann
                .get("kubernetes.io/service-account.name")
                .is_none_or(|v| v.is_empty()) =>
        {
            errs.push(FieldError::required(
                &FieldPath::root("metadata")
                    .child("annotations")
                    .key("kubernetes.io/service-account.name"),
                "",
            ));
        }
        "kubernetes.io/dockercfg" => json_key(&mut errs, &data, ".dockercfg", &data_path),
        "kubernetes.io/dockerconfigjson" => {
            json_key(&mut errs, &data, ".dockerconfigjson", &data_path)
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(FieldError::required(&data_path.key("username"), ""));
            errs.push(FieldError::required(&data_path.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.is_empty()) => {
            errs.push(FieldError::required(&data_path.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !data.contains_key(k) {
                    errs.push(FieldError::required(&data_path.key(k), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

fn json_key(
    errs: &mut Errs,
    data: &std::collections::BTreeMap<String, Vec<u8>>,
    key: &str,
    data_path: &FieldPath,
) {
    match data.get(key) {
        None => errs.push(FieldError::required(&data_path.key(key), "")),
        Some(bytes) => {
            if let Err(e) =
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            {
                errs.push(FieldError::invalid_str(
                    &data_path.key(key),
                    "<secret contents redacted>",
                    e.to_string(),
                ));
            }
        }
    }
}

/// The secret's data with `stringData` merged over it.
pub fn merged_data(secret: &api::Secret) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut data: std::collections::BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

/// `ValidateSecretUpdate` minus object metadata.
pub(crate) fn validate_secret_update(new: &api::Secret, old: &api::Secret) -> Errs {
    let mut errs = Vec::new();
    if new.type_ != old.type_ {
        errs.push(FieldError::invalid_str(
            &FieldPath::root("type"),
            util::s(&new.type_),
            util::IMMUTABLE_MSG,
        ));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden(
                &FieldPath::root("immutable"),
                IMMUTABLE_SET,
            ));
        }
        if merged_data(new) != merged_data(old) {
            errs.push(FieldError::forbidden(
                &FieldPath::root("data"),
                IMMUTABLE_SET,
            ));
        }
    }
    errs.extend(validate_secret(new));
    errs
}

/// `validateFinalizerName` (apimachinery form plus the kube "standard name" rule).
pub(crate) fn finalizer_name(errs: &mut Errs, name: &str, path: &FieldPath) {
    util::qualified_name(errs, name, path);
    super::kube_finalizer_name(errs, name, path);
}

/// `ValidateNamespace` minus object metadata.
pub(crate) fn validate_namespace(ns: &api::Namespace) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &ns.metadata);
    let path = FieldPath::root("spec").child("finalizers");
    for f in ns.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
        finalizer_name(&mut errs, f, &path);
    }
    errs
}

/// `ValidateNamespaceStatusUpdate` minus object metadata.
pub(crate) fn validate_namespace_status(ns: &api::Namespace) -> Errs {
    let mut errs = Vec::new();
    let phase = ns
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default();
    let path = FieldPath::root("status").child("Phase");
    if ns.metadata.deletion_timestamp.is_none() {
        if phase != "Active" {
            errs.push(FieldError::invalid_str(
                &path,
                &phase,
                "may only be 'Active' if `deletionTimestamp` is empty",
            ));
        }
    } else if phase != "Terminating" {
        errs.push(FieldError::invalid_str(
            &path,
            &phase,
            "may only be 'Terminating' if `deletionTimestamp` is not empty",
        ));
    }
    errs
}

/// `ValidateEndpoints` minus object metadata.
pub(crate) fn validate_endpoints(ep: &api::Endpoints) -> Errs {
    let mut errs = Vec::new();
    super::kube_finalizers(&mut errs, &ep.metadata);
    for (i, ss) in ep.subsets.iter().flatten().enumerate() {
        let p = FieldPath::root("subsets").index(i);
        let (addrs, not_ready) = (
            ss.addresses.as_deref().unwrap_or(&[]),
            ss.not_ready_addresses.as_deref().unwrap_or(&[]),
        );
        if addrs.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (field, list) in [("addresses", addrs), ("notReadyAddresses", not_ready)] {
            for (j, a) in list.iter().enumerate() {
                let ap = p.child(field).index(j);
                util::valid_ip(&mut errs, &a.ip, &ap.child("ip"));
                if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
                    util::dns_label(&mut errs, h, &ap.child("hostname"));
                }
                if let Some(n) = &a.node_name {
                    util::dns_subdomain(&mut errs, n, &ap.child("nodeName"));
                }
                non_special_ip(&mut errs, &a.ip, &ap.child("ip"));
            }
        }
        let ports = ss.ports.as_deref().unwrap_or(&[]);
        for (j, port) in ports.iter().enumerate() {
            let pp = p.child("ports").index(j);
            let name = util::s(&port.name);
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(&pp.child("name"), ""));
            } else if !name.is_empty() {
                util::dns_label(&mut errs, name, &pp.child("name"));
            }
            util::port_num(&mut errs, i64::from(port.port), &pp.child("port"));
            containers::protocol(&mut errs, &port.protocol, &pp.child("protocol"));
            if let Some(ap) = &port.app_protocol {
                util::qualified_name(&mut errs, ap, &pp.child("appProtocol"));
            }
        }
    }
    errs
}
