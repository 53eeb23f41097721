//! secret volumes and projections (upstream `pkg/volume/secret/secret.go`): every key of
//! `data`, or only the listed `items` (per-item mode), with `defaultMode` 0644, on a tmpfs; a
//! missing secret or key is an error unless `optional`.

use super::atomic_writer::{FileProjection, Payload};
use super::{PodContext, default_mode};
use k8s_openapi::api::core::v1::{KeyToPath, Secret, SecretVolumeSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Fetches the secret; with `optional` a missing one reads as empty.
pub(crate) async fn fetch(
    ctx: &PodContext<'_>,
    name: &str,
    optional: bool,
) -> Result<Secret, String> {
    match ctx.source.secret(ctx.namespace, name).await {
        Ok(s) => Ok(s),
        Err(e) if e.not_found && optional => Ok(Secret {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(ctx.namespace.to_string()),
                ..Default::default()
            },
            ..Default::default()
        }),
        Err(e) if e.not_found => Err(format!("secret {name:?} not found")),
        Err(e) => Err(e.message),
    }
}

/// Upstream `MakePayload`.
pub(crate) fn make_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, String> {
    let data = secret.data.as_ref();
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data.into_iter().flatten() {
                payload.insert(
                    k.clone(),
                    FileProjection {
                        data: v.0.clone(),
                        mode: default_mode,
                    },
                );
            }
        }
        Some(items) => {
            for ktp in items {
                let Some(content) = data.and_then(|d| d.get(&ktp.key)) else {
                    if optional {
                        continue;
                    }
                    return Err(format!("references non-existent secret key: {}", ktp.key));
                };
                payload.insert(
                    ktp.path.clone(),
                    FileProjection {
                        data: content.0.clone(),
                        mode: ktp.mode.map_or(default_mode, |m| m as u32 & 0o7777),
                    },
                );
            }
        }
    }
    Ok(payload)
}

pub(crate) async fn volume_payload(
    ctx: &PodContext<'_>,
    src: &SecretVolumeSource,
) -> Result<Payload, String> {
    let optional = src.optional == Some(true);
    let name = src.secret_name.as_deref().unwrap_or_default();
    let secret = fetch(ctx, name, optional).await?;
    make_payload(
        src.items.as_deref(),
        &secret,
        default_mode(src.default_mode),
        optional,
    )
}
