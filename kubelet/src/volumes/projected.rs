//! projected volumes (upstream `pkg/volume/projected/projected.go`): secret, configMap,
//! downwardAPI and serviceAccountToken sources merged into one tmpfs-backed directory with the
//! volume's `defaultMode` (0644). Every failing source is reported (`[a, b]` when several).
//! clusterTrustBundle and podCertificate sources are not supported.

use super::atomic_writer::{FileProjection, Payload};
use super::{PodContext, aggregate, configmap, default_mode, downward_api, secret, token};
use k8s_openapi::api::core::v1::ProjectedVolumeSource;

/// `expirationSeconds` when unset (the apiserver defaults it to one hour).
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

pub(crate) async fn volume_payload(
    ctx: &PodContext<'_>,
    src: &ProjectedVolumeSource,
) -> Result<Payload, String> {
    let mode = default_mode(src.default_mode);
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for source in src.sources.iter().flatten() {
        let part = if let Some(s) = &source.secret {
            let optional = s.optional == Some(true);
            match secret::fetch(ctx, &s.name, optional).await {
                Ok(obj) => secret::make_payload(s.items.as_deref(), &obj, mode, optional),
                Err(e) => Err(e),
            }
        } else if let Some(c) = &source.config_map {
            let optional = c.optional == Some(true);
            match configmap::fetch(ctx, &c.name, optional).await {
                Ok(obj) => configmap::make_payload(c.items.as_deref(), &obj, mode, optional),
                Err(e) => Err(e),
            }
        } else if let Some(d) = &source.downward_api {
            downward_api::items_payload(ctx, d.items.as_deref().unwrap_or_default(), mode).await
        } else if let Some(t) = &source.service_account_token {
            let service_account = ctx
                .pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.as_deref())
                .unwrap_or("default");
            let req = token::Request {
                namespace: ctx.namespace,
                service_account,
                audience: t.audience.as_deref().filter(|a| !a.is_empty()),
                expiration_seconds: t
                    .expiration_seconds
                    .unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS),
                pod_name: ctx.name,
                pod_uid: ctx.uid,
            };
            ctx.tokens
                .get(ctx.source, &req, jiff::Timestamp::now())
                .await
                .map(|tok| {
                    Payload::from([(
                        t.path.clone(),
                        FileProjection {
                            data: tok.into_bytes(),
                            mode,
                        },
                    )])
                })
        } else if source.cluster_trust_bundle.is_some() {
            Err("clusterTrustBundle projections are not supported by this kubelet".into())
        } else if source.pod_certificate.is_some() {
            Err("podCertificate projections are not supported by this kubelet".into())
        } else {
            continue;
        };
        match part {
            Ok(p) => payload.extend(p),
            Err(e) => errors.push(e),
        }
    }
    aggregate(errors)?;
    Ok(payload)
}
