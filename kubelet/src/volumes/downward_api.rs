//! downwardAPI volumes and projections (upstream `pkg/volume/downwardapi/downwardapi.go`,
//! `pkg/fieldpath/fieldpath.go`, `pkg/api/v1/resource/helpers.go`): pod metadata fields
//! (labels/annotations as sorted `key="value"` lines, Go-quoted) and container resources
//! divided by the divisor and rounded up, unset limits falling back to node allocatable.

use super::atomic_writer::{FileProjection, Payload, clean_path};
use super::{PodContext, aggregate, default_mode};
use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, DownwardAPIVolumeSource, Pod, ResourceFieldSelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Upstream `FormatMap`: `key="value"` lines in key order, values quoted like Go's `%q`.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Approximates Go's `unicode.IsPrint`: no controls, no spaces but U+0020, no format or
/// private-use characters.
fn go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xFFFE | 0xFFFF | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

/// Upstream `SplitMaybeSubscriptedPath`: `metadata.labels['key']` -> (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (base, sub) = s.split_once("['")?;
    (!base.is_empty()).then_some((base, sub))
}

/// Upstream `ExtractFieldPathAsString` for a pod.
pub fn extract_field_path(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    if let Some((base, key)) = split_subscript(field_path) {
        let map = match base {
            "metadata.annotations" => meta.annotations.as_ref(),
            "metadata.labels" => meta.labels.as_ref(),
            _ => {
                return Err(format!(
                    "fieldPath {field_path:?} does not support subscript"
                ));
            }
        };
        let errs = apiserver_apimachinery::names::is_qualified_name(&key.to_lowercase());
        if !errs.is_empty() {
            return Err(format!(
                "invalid key subscript in {field_path}: {}",
                errs.join(";")
            ));
        }
        return Ok(map.and_then(|m| m.get(key)).cloned().unwrap_or_default());
    }
    Ok(match field_path {
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        _ => return Err(format!("unsupported fieldPath: {field_path}")),
    })
}

fn parse(q: &Quantity) -> Option<apiserver_apis::quantity::Quantity> {
    apiserver_apis::quantity::parse(&q.0).ok()
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, String> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter())
        .chain(
            spec.and_then(|s| s.init_containers.as_deref())
                .unwrap_or_default(),
        )
        .find(|c| c.name == name)
        .ok_or_else(|| format!("container {name} not found"))
}

/// True when `resource` reads a limit the container does not set (so node allocatable is
/// needed).
fn needs_allocatable(pod: &Pod, rf: &ResourceFieldSelector) -> bool {
    let Some(name) = rf.resource.strip_prefix("limits.") else {
        return false;
    };
    let Ok(c) = find_container(pod, rf.container_name.as_deref().unwrap_or_default()) else {
        return false;
    };
    limit(c, name).is_none()
}

/// A set, non-zero limit.
fn limit<'a>(c: &'a Container, name: &str) -> Option<&'a Quantity> {
    let q = c.resources.as_ref()?.limits.as_ref()?.get(name)?;
    parse(q).filter(|p| p.nanos != 0).map(|_| q)
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b <= 0 {
        return a;
    }
    let q = a / b;
    if a % b > 0 { q + 1 } else { q }
}

/// Upstream `ExtractResourceValueByContainerNameAndNodeAllocatable`.
pub fn extract_resource_value(
    pod: &Pod,
    rf: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let c = find_container(pod, rf.container_name.as_deref().unwrap_or_default())?;
    let (kind, name) = rf
        .resource
        .split_once('.')
        .filter(|(k, _)| *k == "limits" || *k == "requests")
        .ok_or_else(|| format!("unsupported container resource : {}", rf.resource))?;
    let supported =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if !supported {
        return Err(format!("unsupported container resource : {}", rf.resource));
    }
    let res = c.resources.as_ref();
    let value = if kind == "limits" {
        // Unset limits default to node allocatable (hugepages always have one).
        limit(c, name).or_else(|| {
            (!name.starts_with("hugepages-"))
                .then(|| allocatable.get(name))
                .flatten()
        })
    } else {
        res.and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(name))
    };
    let value = value.and_then(parse);
    let divisor = rf
        .divisor
        .as_ref()
        .and_then(parse)
        .filter(|d| d.nanos != 0)
        .or_else(|| apiserver_apis::quantity::parse("1").ok());
    let (Some(d), v) = (divisor, value) else {
        return Err(format!("invalid divisor for {}", rf.resource));
    };
    let n = match name {
        "cpu" => ceil_div(v.map_or(0, |v| v.milli_value()), d.milli_value()),
        _ => ceil_div(v.map_or(0, |v| v.value()), d.value()),
    };
    Ok(n.to_string())
}

/// Upstream `CollectData`: one file per item; every failing item is reported.
pub fn collect(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    default_mode: u32,
    allocatable: &Result<BTreeMap<String, Quantity>, String>,
) -> Result<Payload, String> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let mode = item.mode.map_or(default_mode, |m| m as u32 & 0o7777);
        let data = if let Some(fr) = &item.field_ref {
            extract_field_path(pod, &fr.field_path)
        } else if let Some(rf) = &item.resource_field_ref {
            allocatable
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|a| extract_resource_value(pod, rf, a))
        } else {
            Ok(String::new())
        };
        match data {
            Ok(d) => {
                payload.insert(
                    clean_path(&item.path),
                    FileProjection {
                        data: d.into_bytes(),
                        mode,
                    },
                );
            }
            Err(e) => errors.push(e),
        }
    }
    aggregate(errors)?;
    Ok(payload)
}

/// Collects the items, fetching node allocatable only when a limit falls back to it.
pub(crate) async fn items_payload(
    ctx: &PodContext<'_>,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
) -> Result<Payload, String> {
    let needed = items.iter().any(|i| {
        i.resource_field_ref
            .as_ref()
            .is_some_and(|rf| needs_allocatable(ctx.pod, rf))
    });
    let allocatable = if needed {
        ctx.allocatable().await.cloned()
    } else {
        Ok(BTreeMap::new())
    };
    collect(items, ctx.pod, default_mode, &allocatable)
}

pub(crate) async fn volume_payload(
    ctx: &PodContext<'_>,
    src: &DownwardAPIVolumeSource,
) -> Result<Payload, String> {
    items_payload(
        ctx,
        src.items.as_deref().unwrap_or_default(),
        default_mode(src.default_mode),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::test_support::pod_from_json;
    use serde_json::json;

    fn pod() -> Pod {
        pod_from_json(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1",
                "labels": {"zeta": "last", "app": "web", "quote": "a\"b\\c\nd\té"},
                "annotations": {"k8s.io/x": "y"}},
            "spec": {"containers": [
                {"name": "c", "resources": {
                    "limits": {"cpu": "250m", "memory": "64Mi"},
                    "requests": {"cpu": "100m", "memory": "32Mi"}}},
                {"name": "nolimits"}]}
        }))
    }

    #[test]
    fn labels_are_sorted_and_go_quoted() {
        let p = pod();
        assert_eq!(
            extract_field_path(&p, "metadata.labels").unwrap(),
            "app=\"web\"\nquote=\"a\\\"b\\\\c\\nd\\té\"\nzeta=\"last\""
        );
        assert_eq!(
            extract_field_path(&p, "metadata.annotations").unwrap(),
            "k8s.io/x=\"y\""
        );
        assert_eq!(
            go_quote("\u{1}\u{a0}\u{200b}😀"),
            "\"\\x01\\u00a0\\u200b😀\""
        );
    }

    #[test]
    fn metadata_fields_and_errors() {
        let p = pod();
        assert_eq!(extract_field_path(&p, "metadata.name").unwrap(), "p");
        assert_eq!(extract_field_path(&p, "metadata.namespace").unwrap(), "ns");
        assert_eq!(extract_field_path(&p, "metadata.uid").unwrap(), "u-1");
        assert_eq!(
            extract_field_path(&p, "metadata.labels['app']").unwrap(),
            "web"
        );
        assert_eq!(
            extract_field_path(&p, "metadata.labels['absent']").unwrap(),
            ""
        );
        assert_eq!(
            extract_field_path(&p, "spec.nodeName").unwrap_err(),
            "unsupported fieldPath: spec.nodeName"
        );
        assert_eq!(
            extract_field_path(&p, "metadata.name['x']").unwrap_err(),
            "fieldPath \"metadata.name['x']\" does not support subscript"
        );
        assert!(
            extract_field_path(&p, "metadata.labels['-bad-']")
                .unwrap_err()
                .starts_with("invalid key subscript in metadata.labels['-bad-']: ")
        );
    }

    fn rf(container: &str, resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector {
            container_name: Some(container.into()),
            resource: resource.into(),
            divisor: divisor.map(|d| Quantity(d.into())),
        }
    }

    #[test]
    fn resources_with_divisor_and_allocatable() {
        let p = pod();
        let alloc: BTreeMap<String, Quantity> = [
            ("cpu".to_string(), Quantity("4".into())),
            ("memory".to_string(), Quantity("8Gi".into())),
        ]
        .into();
        let v = |c, r, d| extract_resource_value(&p, &rf(c, r, d), &alloc);
        assert_eq!(v("c", "limits.cpu", None).unwrap(), "1");
        assert_eq!(v("c", "limits.cpu", Some("1m")).unwrap(), "250");
        assert_eq!(v("c", "requests.cpu", Some("1m")).unwrap(), "100");
        assert_eq!(v("c", "limits.memory", None).unwrap(), "67108864");
        assert_eq!(v("c", "limits.memory", Some("1Mi")).unwrap(), "64");
        assert_eq!(v("c", "requests.memory", Some("1Gi")).unwrap(), "1");
        assert_eq!(v("nolimits", "limits.cpu", None).unwrap(), "4");
        assert_eq!(v("nolimits", "limits.memory", Some("1Gi")).unwrap(), "8");
        assert_eq!(v("nolimits", "requests.cpu", None).unwrap(), "0");
        assert_eq!(
            v("ghost", "limits.cpu", None).unwrap_err(),
            "container ghost not found"
        );
        assert_eq!(
            v("c", "limits.gpu", None).unwrap_err(),
            "unsupported container resource : limits.gpu"
        );
        assert!(needs_allocatable(&p, &rf("nolimits", "limits.cpu", None)));
        assert!(!needs_allocatable(&p, &rf("c", "limits.cpu", None)));
        assert!(!needs_allocatable(
            &p,
            &rf("nolimits", "requests.cpu", None)
        ));
    }

    #[test]
    fn collect_paths_modes_and_aggregated_errors() {
        let p = pod();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "./name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "res/cpu", "mode": 0o400,
             "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}}
        ]))
        .unwrap();
        let out = collect(&items, &p, 0o644, &Ok(BTreeMap::new())).unwrap();
        assert_eq!(out["name"].data, b"p");
        assert_eq!(out["name"].mode, 0o644);
        assert_eq!(out["res/cpu"].data, b"250");
        assert_eq!(out["res/cpu"].mode, 0o400);

        let bad: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "a", "fieldRef": {"fieldPath": "spec.x"}},
            {"path": "b", "fieldRef": {"fieldPath": "spec.y"}}
        ]))
        .unwrap();
        assert_eq!(
            collect(&bad, &p, 0o644, &Ok(BTreeMap::new())).unwrap_err(),
            "[unsupported fieldPath: spec.x, unsupported fieldPath: spec.y]"
        );
    }
}
