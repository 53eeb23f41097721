//! configMap volumes and projections (upstream `pkg/volume/configmap/configmap.go`): every
//! key of `data` and `binaryData`, or only the listed `items` (per-item mode), with
//! `defaultMode` 0644; a missing configMap or key is an error unless `optional`.

use super::atomic_writer::{FileProjection, Payload};
use super::{PodContext, default_mode};
use k8s_openapi::api::core::v1::{ConfigMap, ConfigMapVolumeSource, KeyToPath};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Fetches the configMap; with `optional` a missing one reads as empty.
pub(crate) async fn fetch(
    ctx: &PodContext<'_>,
    name: &str,
    optional: bool,
) -> Result<ConfigMap, String> {
    match ctx.source.config_map(ctx.namespace, name).await {
        Ok(cm) => Ok(cm),
        Err(e) if e.not_found && optional => Ok(ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ctx.namespace.to_string()),
                ..Default::default()
            },
            ..Default::default()
        }),
        Err(e) if e.not_found => Err(format!("configmap {name:?} not found")),
        Err(e) => Err(e.message),
    }
}

/// Upstream `MakePayload`.
pub(crate) fn make_payload(
    items: Option<&[KeyToPath]>,
    cm: &ConfigMap,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let data = cm.data.as_ref();
    let binary = cm.binary_data.as_ref();
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data.into_iter().flatten() {
                payload.insert(k.clone(), file(v.as_bytes().to_vec(), default_mode));
            }
            for (k, v) in binary.into_iter().flatten() {
                payload.insert(k.clone(), file(v.0.clone(), default_mode));
            }
        }
        Some(items) => {
            for ktp in items {
                let content = if let Some(s) = data.and_then(|d| d.get(&ktp.key)) {
                    s.as_bytes().to_vec()
                } else if let Some(b) = binary.and_then(|d| d.get(&ktp.key)) {
                    b.0.clone()
                } else if optional {
                    continue;
                } else {
                    return Err(format!(
                        "configmap references non-existent config key: {}",
                        ktp.key
                    ));
                };
                let mode = ktp.mode.map_or(default_mode, |m| m as u32 & 0o7777);
                payload.insert(ktp.path.clone(), file(content, mode));
            }
        }
    }
    Ok(payload)
}

fn file(data: Vec<u8>, mode: u32) -> FileProjection {
    FileProjection { data, mode }
}

pub(crate) async fn volume_payload(
    ctx: &PodContext<'_>,
    src: &ConfigMapVolumeSource,
) -> Result<Payload, String> {
    let optional = src.optional == Some(true);
    let cm = fetch(ctx, &src.name, optional).await?;
    make_payload(
        src.items.as_deref(),
        &cm,
        default_mode(src.default_mode),
        optional,
    )
}
