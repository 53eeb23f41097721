//! ServiceAccount admission for pod creates (mirrors plugin/pkg/admission/serviceaccount/
//! admission.go, Admit then Validate): pods run as their namespace's `default` account unless
//! they name one; the account must exist (looked up in the watch cache, then in storage, ten
//! times for `default` as upstream retries while the controller creates it); the API access
//! volume `kube-api-access-xxxxx` is projected into every container unless automounting is off;
//! the account's image pull secrets are copied; mirror pods may reference no accounts or secrets.

use crate::meta::generate_name;
use crate::serviceaccount::authenticator::cached_get;
use crate::store::GenericStore;
use apiserver_apimachinery::{ApiError, Reason};
use k8s_openapi::api::core::v1::{
    ConfigMapProjection, Container, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath,
    LocalObjectReference, ObjectFieldSelector, Pod, ProjectedVolumeSource, ServiceAccount,
    ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::Arc;

pub const DEFAULT_SERVICE_ACCOUNT_NAME: &str = "default";
pub const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";
pub const SERVICE_ACCOUNT_VOLUME_NAME: &str = "kube-api-access";
pub const DEFAULT_API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";

pub struct ServiceAccountAdmission {
    pub service_accounts: Arc<GenericStore<ServiceAccount>>,
}

/// `pods "<name or generateName>" is forbidden: <why>` (admission.NewForbidden).
fn forbidden(pod: &Pod, why: &str) -> ApiError {
    let m = &pod.metadata;
    let name = m
        .name
        .as_deref()
        .filter(|n| !n.is_empty())
        .or(m.generate_name.as_deref().filter(|n| !n.is_empty()))
        .unwrap_or("Unknown");
    ApiError::forbidden("", "pods", name, why)
}

/// Go's strconv.ParseBool, true only for its true spellings.
fn parse_bool_true(v: &str) -> bool {
    matches!(v, "1" | "t" | "T" | "TRUE" | "true" | "True")
}

/// The projected volume of the API credentials (upstream `TokenVolumeSource`).
pub fn token_volume_source() -> ProjectedVolumeSource {
    ProjectedVolumeSource {
        default_mode: Some(0o644),
        sources: Some(vec![
            VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    path: "token".into(),
                    expiration_seconds: Some(super::WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS),
                    ..Default::default()
                }),
                ..Default::default()
            },
            VolumeProjection {
                config_map: Some(ConfigMapProjection {
                    name: "kube-root-ca.crt".into(),
                    items: Some(vec![KeyToPath {
                        key: "ca.crt".into(),
                        path: "ca.crt".into(),
                        ..Default::default()
                    }]),
                    optional: None,
                }),
                ..Default::default()
            },
            VolumeProjection {
                downward_api: Some(DownwardAPIProjection {
                    items: Some(vec![DownwardAPIVolumeFile {
                        path: "namespace".into(),
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: "metadata.namespace".into(),
                        }),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

fn should_automount(sa: &ServiceAccount, pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .or(sa.automount_service_account_token)
        .unwrap_or(true)
}

/// Adds the volume mount to every container without a mount at the token path; whether any did.
fn mount_into(containers: &mut [Container], mount: &VolumeMount) -> bool {
    let mut needed = false;
    for c in containers {
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        if !mounts
            .iter()
            .any(|m| m.mount_path == DEFAULT_API_TOKEN_MOUNT_PATH)
        {
            mounts.push(mount.clone());
            needed = true;
        }
    }
    needed
}

/// Upstream `mountServiceAccountToken`.
fn mount_service_account_token(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    let prefix = format!("{SERVICE_ACCOUNT_VOLUME_NAME}-");
    let existing = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with(&prefix))
        .map(|v| v.name.clone());
    let has_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(|| generate_name(&prefix));
    let mount = VolumeMount {
        name: volume_name.clone(),
        read_only: Some(true),
        mount_path: DEFAULT_API_TOKEN_MOUNT_PATH.into(),
        ..Default::default()
    };
    let mut needed = false;
    if let Some(init) = spec.init_containers.as_mut() {
        needed |= mount_into(init, &mount);
    }
    needed |= mount_into(&mut spec.containers, &mount);
    if !has_volume && needed {
        spec.volumes.get_or_insert_with(Vec::new).push(Volume {
            name: volume_name,
            projected: Some(token_volume_source()),
            ..Default::default()
        });
    }
}

/// Whether the pod references any secret (upstream `VisitPodSecretNames`, all containers).
fn references_secrets(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else {
        return false;
    };
    if spec
        .image_pull_secrets
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return true;
    }
    let v = serde_json::to_value(spec).unwrap_or_default();
    let volume_secret = v["volumes"].as_array().into_iter().flatten().any(|vol| {
        vol.get("secret").is_some()
            || vol["azureFile"].get("secretName").is_some()
            || vol["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|s| s.get("secret").is_some())
            || vol
                .as_object()
                .into_iter()
                .flat_map(|o| o.values())
                .any(|src| {
                    src.get("secretRef").is_some() || src.get("nodePublishSecretRef").is_some()
                })
    });
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| v[*k].as_array().cloned().unwrap_or_default());
    let mut env_secret = false;
    for c in containers {
        env_secret |= c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["valueFrom"].get("secretKeyRef").is_some());
        env_secret |= c["envFrom"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e.get("secretRef").is_some());
    }
    volume_secret || env_secret
}

/// Upstream `Validate` for mirror pods.
fn validate_mirror_pod(pod: &Pod) -> Result<(), ApiError> {
    let spec = pod.spec.as_ref();
    if spec
        .and_then(|s| s.service_account_name.as_deref())
        .is_some_and(|n| !n.is_empty())
    {
        return Err(forbidden(
            pod,
            "a mirror pod may not reference service accounts",
        ));
    }
    if references_secrets(pod) {
        return Err(forbidden(pod, "a mirror pod may not reference secrets"));
    }
    let projects_token = spec
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .any(|s| s.service_account_token.is_some());
    if projects_token {
        return Err(forbidden(
            pod,
            "a mirror pod may not use ServiceAccountToken volume projections",
        ));
    }
    Ok(())
}

/// Upstream `limitSecretReferences`: with the enforce-mountable-secrets annotation, a pod may
/// only use the secrets its account lists.
fn limit_secret_references(sa: &ServiceAccount, pod: &Pod) -> Result<(), String> {
    let sa_name = sa.metadata.name.clone().unwrap_or_default();
    let mountable: BTreeSet<String> = sa
        .secrets
        .iter()
        .flatten()
        .filter_map(|r| r.name.clone())
        .collect();
    let Some(spec) = &pod.spec else {
        return Ok(());
    };
    for v in spec.volumes.iter().flatten() {
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            if !mountable.contains(&name) {
                return Err(format!(
                    "volume with secret.secretName=\"{name}\" is not allowed because service account {sa_name} does not reference that secret"
                ));
            }
        }
    }
    let groups = [
        (
            "init container",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("container", spec.containers.as_slice()),
    ];
    for (what, containers) in groups {
        for c in containers {
            for e in c.env.iter().flatten() {
                let r = e
                    .value_from
                    .as_ref()
                    .and_then(|f| f.secret_key_ref.as_ref());
                if let Some(r) = r.filter(|r| !mountable.contains(&r.name)) {
                    return Err(format!(
                        "{what} {} with envVar {} referencing secret.secretName=\"{}\" is not allowed because service account {sa_name} does not reference that secret",
                        c.name, e.name, r.name
                    ));
                }
            }
            for e in c.env_from.iter().flatten() {
                let r = e.secret_ref.as_ref();
                if let Some(r) = r.filter(|r| !mountable.contains(&r.name)) {
                    return Err(format!(
                        "{what} {} with envFrom referencing secret.secretName=\"{}\" is not allowed because service account {sa_name} does not reference that secret",
                        c.name, r.name
                    ));
                }
            }
        }
    }
    let pull: BTreeSet<String> = sa
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    for (i, r) in spec.image_pull_secrets.iter().flatten().enumerate() {
        if !pull.contains(&r.name) {
            return Err(format!(
                "imagePullSecrets[{i}].name=\"{}\" is not allowed because service account {sa_name} does not reference that imagePullSecret",
                r.name
            ));
        }
    }
    Ok(())
}

impl ServiceAccountAdmission {
    /// Upstream `getServiceAccount`: the watch cache, then storage; `default` is tried ten times
    /// (100-199 ms apart) since the controller creates it right after its namespace.
    async fn get_service_account(&self, ns: &str, name: &str) -> Result<ServiceAccount, ApiError> {
        match cached_get(&self.service_accounts, Some(ns), name).await {
            Ok(sa) => return Ok(sa),
            Err(e) if e.reason != Reason::NotFound => return Err(e),
            Err(_) => {}
        }
        let attempts = if name == DEFAULT_SERVICE_ACCOUNT_NAME {
            10
        } else {
            1
        };
        let interval = std::time::Duration::from_millis(rand::rng().random_range(100..200));
        // The first attempt was the lookup above.
        for _ in 1..attempts {
            tokio::time::sleep(interval).await;
            match cached_get(&self.service_accounts, Some(ns), name).await {
                Ok(sa) => return Ok(sa),
                Err(e) if e.reason != Reason::NotFound => return Err(e),
                Err(_) => {}
            }
        }
        Err(ApiError::not_found("", "serviceaccount", name))
    }

    /// Admits a pod being created in namespace `ns`.
    pub async fn admit(&self, ns: &str, pod: &mut Pod) -> Result<(), ApiError> {
        let mirror = pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
        if mirror {
            return validate_mirror_pod(pod);
        }
        let spec = pod.spec.get_or_insert_with(Default::default);
        let sa_name = match spec.service_account_name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                spec.service_account_name = Some(DEFAULT_SERVICE_ACCOUNT_NAME.into());
                DEFAULT_SERVICE_ACCOUNT_NAME.to_string()
            }
        };
        let sa = self.get_service_account(ns, &sa_name).await.map_err(|e| {
            forbidden(
                pod,
                &format!(
                    "error looking up service account {ns}/{sa_name}: {}",
                    e.message
                ),
            )
        })?;
        if should_automount(&sa, pod) {
            mount_service_account_token(pod);
        }
        let spec = pod.spec.get_or_insert_with(Default::default);
        if spec.image_pull_secrets.as_ref().is_none_or(Vec::is_empty) {
            let from_sa: Vec<LocalObjectReference> = sa
                .image_pull_secrets
                .iter()
                .flatten()
                .map(|r| LocalObjectReference {
                    name: r.name.clone(),
                })
                .collect();
            spec.image_pull_secrets = (!from_sa.is_empty()).then_some(from_sa);
        }
        let enforce = sa
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS_ANNOTATION))
            .is_some_and(|v| parse_bool_true(v));
        if enforce {
            limit_secret_references(&sa, pod).map_err(|e| forbidden(pod, &e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn mounts_into_every_container_once() {
        let mut p = pod(serde_json::json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [
                {"name": "mine", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}]}]}}));
        mount_service_account_token(&mut p);
        let spec = p.spec.unwrap();
        let vols = spec.volumes.unwrap();
        assert_eq!(vols.len(), 1);
        let name = &vols[0].name;
        assert!(
            name.starts_with("kube-api-access-") && name.len() == 21,
            "{name}"
        );
        assert_eq!(
            serde_json::to_value(&vols[0].projected).unwrap(),
            serde_json::json!({"defaultMode": 420, "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}}]})
        );
        let init = &spec.init_containers.unwrap()[0];
        assert_eq!(
            serde_json::to_value(init.volume_mounts.as_ref().unwrap()).unwrap(),
            serde_json::json!([{"mountPath": DEFAULT_API_TOKEN_MOUNT_PATH, "name": name, "readOnly": true}])
        );
        assert_eq!(
            spec.containers[0].volume_mounts.as_ref().unwrap()[0].name,
            *name
        );
        // The container that mounts something there itself keeps only its own mount.
        assert_eq!(spec.containers[1].volume_mounts.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn an_existing_api_access_volume_is_reused() {
        let mut p = pod(serde_json::json!({"spec": {"containers": [{"name": "a"}],
            "volumes": [{"name": "kube-api-access-abcde", "emptyDir": {}}]}}));
        mount_service_account_token(&mut p);
        let spec = p.spec.unwrap();
        assert_eq!(spec.volumes.unwrap().len(), 1);
        assert_eq!(
            spec.containers[0].volume_mounts.as_ref().unwrap()[0].name,
            "kube-api-access-abcde"
        );
        assert!(spec.init_containers.is_none());
    }

    #[test]
    fn automount_preference() {
        let sa = |v: Option<bool>| ServiceAccount {
            automount_service_account_token: v,
            ..Default::default()
        };
        let p = |v: Option<bool>| {
            let mut p = pod(serde_json::json!({"spec": {"containers": []}}));
            p.spec.as_mut().unwrap().automount_service_account_token = v;
            p
        };
        assert!(should_automount(&sa(None), &p(None)));
        assert!(!should_automount(&sa(Some(false)), &p(None)));
        assert!(should_automount(&sa(Some(false)), &p(Some(true))));
        assert!(!should_automount(&sa(Some(true)), &p(Some(false))));
    }

    #[test]
    fn mirror_pods_and_mountable_secrets() {
        let mirror = pod(
            serde_json::json!({"metadata": {"name": "m"}, "spec": {"containers": [
            {"name": "c", "env": [{"name": "E", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}]}}),
        );
        assert_eq!(
            validate_mirror_pod(&mirror).unwrap_err().message,
            "pods \"m\" is forbidden: a mirror pod may not reference secrets"
        );
        let named = pod(serde_json::json!({"metadata": {"generateName": "m-"},
            "spec": {"serviceAccountName": "x", "containers": []}}));
        assert_eq!(
            validate_mirror_pod(&named).unwrap_err().message,
            "pods \"m-\" is forbidden: a mirror pod may not reference service accounts"
        );
        let sa: ServiceAccount = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "sa"}, "secrets": [{"name": "ok"}]}))
        .unwrap();
        let p = pod(serde_json::json!({"spec": {"containers": [],
            "volumes": [{"name": "v", "secret": {"secretName": "other"}}]}}));
        assert_eq!(
            limit_secret_references(&sa, &p).unwrap_err(),
            "volume with secret.secretName=\"other\" is not allowed because service account sa does not reference that secret"
        );
        let fine = pod(serde_json::json!({"spec": {"containers": [],
            "volumes": [{"name": "v", "secret": {"secretName": "ok"}}]}}));
        assert!(limit_secret_references(&sa, &fine).is_ok());
        assert!(parse_bool_true("T") && !parse_bool_true("yes"));
    }
}
