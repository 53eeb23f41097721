//! Subresources as wrappers over the generic store (mirrors pkg/registry/core/pod/storage and
//! the scale/status storages): `status`, `scale`, `pods/binding`, `namespaces/finalize`.

use crate::context::{PatchType, RequestContext, WriteOptions};
use crate::decode::decode;
use crate::rest::{Rest, WriteOutput, patch_store};
use crate::store::{GenericStore, Object, UpdateMode};
use apiserver_apiextensions::helpers::{get_path, set_path};
use apiserver_apimachinery::patch::{apply_json_patch, apply_merge_patch};
use apiserver_apimachinery::{ApiError, FieldError, FieldPath, ResourceInfo};
use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec, ScaleStatus};
use k8s_openapi::api::core::v1::{Binding, Namespace, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use std::sync::Arc;

fn to_bytes<T: serde::Serialize>(v: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `<resource>/status`: reads the whole object, writes only its status.
pub struct StatusRest<K: Object> {
    pub store: Arc<GenericStore<K>>,
}

#[async_trait]
impl<K: Object> Rest for StatusRest<K> {
    fn info(&self) -> &ResourceInfo {
        &self.store.info
    }
    fn protobuf(&self) -> bool {
        self.store.support.protobuf()
    }
    async fn get(&self, ctx: &RequestContext, name: &str) -> Result<Bytes, ApiError> {
        to_bytes(&self.store.get(ctx.namespace.as_deref(), name).await?)
    }
    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = self.store.support.decode(body, opts.field_validation)?;
        let obj = d.object;
        let (out, _) = self
            .store
            .update_with(ctx, name, UpdateMode::Status, opts, |_| Ok(obj.clone()))
            .await?;
        Ok(WriteOutput {
            body: to_bytes(&out)?,
            code: 200,
            warnings: d.warnings,
        })
    }
    async fn patch(
        &self,
        ctx: &RequestContext,
        name: &str,
        ty: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let (out, warnings) =
            patch_store(&self.store, ctx, name, ty, body, opts, UpdateMode::Status).await?;
        Ok(WriteOutput {
            body: to_bytes(&out)?,
            code: 200,
            warnings,
        })
    }
}

/// `<resource>/scale` (autoscaling/v1 Scale): workloads with `spec.replicas`, and custom
/// resources with the paths of their CRD's scale subresource.
pub struct ScaleRest<K: Object> {
    pub store: Arc<GenericStore<K>>,
    pub paths: ScalePaths,
}

/// Where the scale's fields are in the object (dotted JSON paths).
pub use apiserver_apiextensions::helpers::ScalePaths;

/// The scale paths of the built-in workloads.
pub fn workload_scale_paths() -> ScalePaths {
    ScalePaths {
        spec_replicas_path: ".spec.replicas".into(),
        status_replicas_path: ".status.replicas".into(),
        label_selector_path: Some(".spec.selector".into()),
    }
}

fn selector_string(v: &Value) -> String {
    // metav1.LabelSelector (apps) or a plain map (replicationcontrollers).
    let mut parts = Vec::new();
    let labels = v
        .get("matchLabels")
        .or(if v.get("matchExpressions").is_none() {
            Some(v)
        } else {
            None
        });
    if let Some(m) = labels.and_then(Value::as_object) {
        for (k, val) in m {
            if let Some(s) = val.as_str() {
                parts.push(format!("{k}={s}"));
            }
        }
    }
    if let Some(exprs) = v.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let vals: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => parts.push(format!("{key} in ({})", vals.join(","))),
                "NotIn" => parts.push(format!("{key} notin ({})", vals.join(","))),
                "Exists" => parts.push(key.to_string()),
                "DoesNotExist" => parts.push(format!("!{key}")),
                _ => {}
            }
        }
    }
    parts.join(",")
}

impl<K: Object> ScaleRest<K> {
    fn scale_of(&self, obj: &K) -> Result<Scale, ApiError> {
        let v = serde_json::to_value(obj).map_err(|e| ApiError::internal(e.to_string()))?;
        let m = obj.metadata();
        Ok(Scale {
            metadata: ObjectMeta {
                name: m.name.clone(),
                namespace: m.namespace.clone(),
                uid: m.uid.clone(),
                resource_version: m.resource_version.clone(),
                creation_timestamp: m.creation_timestamp.clone(),
                ..Default::default()
            },
            spec: Some(ScaleSpec {
                replicas: Some(
                    get_path(&v, &self.paths.spec_replicas_path)
                        .and_then(Value::as_i64)
                        .unwrap_or(0) as i32,
                ),
            }),
            status: Some(ScaleStatus {
                replicas: get_path(&v, &self.paths.status_replicas_path)
                    .and_then(Value::as_i64)
                    .unwrap_or(0) as i32,
                selector: self
                    .paths
                    .label_selector_path
                    .as_deref()
                    .and_then(|p| get_path(&v, p))
                    .map(|s| match s {
                        Value::String(s) => s.clone(),
                        other => selector_string(other),
                    })
                    .filter(|s| !s.is_empty()),
            }),
        })
    }

    async fn apply_scale(
        &self,
        ctx: &RequestContext,
        name: &str,
        scale: Scale,
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let replicas = scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                name,
                &[FieldError::invalid(
                    &FieldPath::root("spec").child("replicas"),
                    replicas,
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let precondition = scale
            .metadata
            .resource_version
            .clone()
            .filter(|s| !s.is_empty());
        let (out, _) = self
            .store
            .update_with(ctx, name, UpdateMode::Main, opts, |old| {
                let old = old.ok_or_else(|| {
                    ApiError::not_found(self.store.info.group, self.store.info.resource, name)
                })?;
                let mut v =
                    serde_json::to_value(old).map_err(|e| ApiError::internal(e.to_string()))?;
                set_path(
                    &mut v,
                    &self.paths.spec_replicas_path,
                    Value::from(replicas),
                )
                .map_err(ApiError::bad_request)?;
                let mut k: K =
                    serde_json::from_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
                if let Some(rv) = &precondition {
                    k.metadata_mut().resource_version = Some(rv.clone());
                }
                Ok(k)
            })
            .await?;
        Ok(WriteOutput {
            body: to_bytes(&self.scale_of(&out)?)?,
            code: 200,
            warnings: vec![],
        })
    }
}

#[async_trait]
impl<K: Object> Rest for ScaleRest<K> {
    fn info(&self) -> &ResourceInfo {
        &self.store.info
    }
    fn body_kind(&self) -> (String, String) {
        ("autoscaling/v1".into(), "Scale".into())
    }
    async fn get(&self, ctx: &RequestContext, name: &str) -> Result<Bytes, ApiError> {
        let obj = self.store.get(ctx.namespace.as_deref(), name).await?;
        to_bytes(&self.scale_of(&obj)?)
    }
    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = decode::<Scale>(body, "autoscaling/v1", "Scale", opts.field_validation)?;
        self.apply_scale(ctx, name, d.object, opts).await
    }
    async fn patch(
        &self,
        ctx: &RequestContext,
        name: &str,
        ty: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let obj = self.store.get(ctx.namespace.as_deref(), name).await?;
        let cur = serde_json::to_value(self.scale_of(&obj)?)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let patched = match ty {
            PatchType::Json => apply_json_patch(&cur, body)?,
            PatchType::Merge | PatchType::Strategic => apply_merge_patch(&cur, body)?,
            PatchType::Apply => {
                return Err(ApiError::unsupported_media_type(
                    "application/apply-patch+yaml",
                ));
            }
        };
        let mut scale: Scale =
            serde_json::from_value(patched).map_err(|e| ApiError::bad_request(e.to_string()))?;
        // A patch that does not set resourceVersion is unconditional.
        if scale.metadata.resource_version == obj.metadata().resource_version {
            scale.metadata.resource_version = None;
        }
        self.apply_scale(ctx, name, scale, opts).await
    }
}

/// `pods/binding` and the `bindings` resource: assigns a pod to a node, once.
pub struct BindingRest {
    pub pods: Arc<GenericStore<Pod>>,
    pub info: ResourceInfo,
}

#[async_trait]
impl Rest for BindingRest {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn body_kind(&self) -> (String, String) {
        ("v1".into(), "Binding".into())
    }
    async fn create(
        &self,
        ctx: &RequestContext,
        name: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let b = decode::<Binding>(body, "v1", "Binding", opts.field_validation)?.object;
        let pod_name = match (name, b.metadata.name.as_deref()) {
            (Some(n), Some(bn)) if n != bn => {
                return Err(ApiError::bad_request(format!(
                    "name in URL ({n}) does not match name in body ({bn})"
                )));
            }
            (Some(n), _) => n.to_string(),
            (None, Some(bn)) => bn.to_string(),
            (None, None) => {
                return Err(ApiError::invalid(
                    "",
                    "Binding",
                    "",
                    &[FieldError::required(
                        &FieldPath::root("metadata").child("name"),
                        "",
                    )],
                ));
            }
        };
        let node = b.target.name.clone().unwrap_or_default();
        if node.is_empty() {
            return Err(ApiError::invalid(
                "",
                "Binding",
                &pod_name,
                &[FieldError::required(
                    &FieldPath::root("target").child("name"),
                    "",
                )],
            ));
        }
        let uid_pre = b.metadata.uid.clone();
        self.pods
            .update_with(ctx, &pod_name, UpdateMode::Internal, opts, |old| {
                let old = old.ok_or_else(|| ApiError::not_found("", "pods", &pod_name))?;
                let mut pod = old.clone();
                if let Some(uid) = &uid_pre {
                    if old.metadata.uid.as_ref() != Some(uid) {
                        return Err(ApiError::conflict(
                            "",
                            "pods",
                            &pod_name,
                            "the UID in the binding does not match the pod",
                        ));
                    }
                }
                if old.metadata.deletion_timestamp.is_some() {
                    return Err(ApiError::conflict(
                        "",
                        "pods",
                        &pod_name,
                        "pod is being deleted, cannot be assigned to a host",
                    ));
                }
                let spec = pod.spec.get_or_insert_with(Default::default);
                if let Some(cur) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
                    return Err(ApiError::conflict(
                        "",
                        "pods/binding",
                        &pod_name,
                        &format!("pod {pod_name} is already assigned to node \"{cur}\""),
                    ));
                }
                spec.node_name = Some(node.clone());
                let status = pod.status.get_or_insert_with(Default::default);
                let conds = status.conditions.get_or_insert_with(Vec::new);
                conds.retain(|c| c.type_ != "PodScheduled");
                conds.push(PodCondition {
                    type_: "PodScheduled".into(),
                    status: "True".into(),
                    last_transition_time: Some(crate::meta::now()),
                    ..Default::default()
                });
                Ok(pod)
            })
            .await?;
        let s = apiserver_apimachinery::error::success_status("", "pods", &pod_name, None);
        let mut s = s;
        s.details = None;
        s.code = Some(201);
        Ok(WriteOutput {
            body: to_bytes(&s)?,
            code: 201,
            warnings: vec![],
        })
    }
}

/// `namespaces/finalize`: the only way to change `spec.finalizers` of a namespace.
pub struct FinalizeRest {
    pub namespaces: Arc<GenericStore<Namespace>>,
}

#[async_trait]
impl Rest for FinalizeRest {
    fn info(&self) -> &ResourceInfo {
        &self.namespaces.info
    }
    async fn update(
        &self,
        ctx: &RequestContext,
        name: &str,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = decode::<Namespace>(body, "v1", "Namespace", opts.field_validation)?;
        let finalizers = d.object.spec.as_ref().and_then(|s| s.finalizers.clone());
        let rv = d.object.metadata.resource_version.clone();
        let (out, _) = self
            .namespaces
            .update_with(ctx, name, UpdateMode::Internal, opts, |old| {
                let mut ns = old
                    .cloned()
                    .ok_or_else(|| ApiError::not_found("", "namespaces", name))?;
                ns.spec.get_or_insert_with(Default::default).finalizers = finalizers.clone();
                if let Some(rv) = rv.clone().filter(|r| !r.is_empty()) {
                    ns.metadata.resource_version = Some(rv);
                }
                Ok(ns)
            })
            .await?;
        Ok(WriteOutput {
            body: to_bytes(&out)?,
            code: 200,
            warnings: d.warnings,
        })
    }
}
