//! Test helpers: a temporary directory and an in-memory `ObjectSource`.

use super::{ObjectSource, SourceError};
use async_trait::async_trait;
use k8s_openapi::ByteString;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let p = std::env::temp_dir().join(format!("kubelet-volumes-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    /// Unmounts what a failed test left mounted below the directory, then removes it.
    fn drop(&mut self) {
        if let Ok(mut mounts) = super::empty_dir::mount_points() {
            mounts.retain(|m| m.starts_with(&self.0));
            mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
            for m in mounts {
                let _ = std::process::Command::new("umount").arg(&m).status();
            }
        }
        let _ = super::empty_dir::remove_all_one_filesystem(&self.0);
    }
}

pub fn pod_from_json(v: serde_json::Value) -> Pod {
    let mut v = v;
    if let Some(o) = v.as_object_mut() {
        o.entry("metadata").or_insert(serde_json::json!({}));
    }
    serde_json::from_value(v).unwrap()
}

#[derive(Default)]
struct State {
    config_maps: HashMap<(String, String), ConfigMap>,
    secrets: HashMap<(String, String), Secret>,
    token_requests: Vec<(String, String, TokenRequest)>,
    token_error: Option<String>,
    now: Option<jiff::Timestamp>,
    allocatable: BTreeMap<String, Quantity>,
    allocatable_calls: usize,
}

#[derive(Default)]
pub struct FakeSource {
    state: Mutex<State>,
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

impl FakeSource {
    fn st(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
    pub fn put_config_map(&self, ns: &str, name: &str, data: &[(&str, &str)]) {
        let cm = ConfigMap {
            metadata: meta(ns, name),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.put_config_map_obj(cm);
    }
    pub fn put_config_map_obj(&self, cm: ConfigMap) {
        let key = (
            cm.metadata.namespace.clone().unwrap_or_default(),
            cm.metadata.name.clone().unwrap_or_default(),
        );
        self.st().config_maps.insert(key, cm);
    }
    pub fn put_secret(&self, ns: &str, name: &str, data: &[(&str, &[u8])]) {
        let s = Secret {
            metadata: meta(ns, name),
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        self.st().secrets.insert((ns.into(), name.into()), s);
    }
    pub fn set_now(&self, t: jiff::Timestamp) {
        self.st().now = Some(t);
    }
    pub fn fail_tokens(&self, message: &str) {
        self.st().token_error = Some(message.into());
    }
    pub fn token_requests(&self) -> Vec<(String, String, TokenRequest)> {
        self.st().token_requests.clone()
    }
    pub fn set_allocatable(&self, items: &[(&str, &str)]) {
        self.st().allocatable = items
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
    }
    pub fn allocatable_calls(&self) -> usize {
        self.st().allocatable_calls
    }
}

#[async_trait]
impl ObjectSource for FakeSource {
    async fn config_map(&self, ns: &str, name: &str) -> Result<ConfigMap, SourceError> {
        self.st()
            .config_maps
            .get(&(ns.into(), name.into()))
            .cloned()
            .ok_or_else(|| SourceError::not_found(format!("configmaps {name:?} not found")))
    }
    async fn secret(&self, ns: &str, name: &str) -> Result<Secret, SourceError> {
        self.st()
            .secrets
            .get(&(ns.into(), name.into()))
            .cloned()
            .ok_or_else(|| SourceError::not_found(format!("secrets {name:?} not found")))
    }
    async fn create_token(
        &self,
        ns: &str,
        sa: &str,
        req: &TokenRequest,
    ) -> Result<TokenRequest, SourceError> {
        let mut st = self.st();
        if let Some(e) = &st.token_error {
            return Err(SourceError::not_found(e.clone()));
        }
        st.token_requests.push((ns.into(), sa.into(), req.clone()));
        let now = st.now.unwrap_or_else(jiff::Timestamp::now);
        let secs = req
            .spec
            .as_ref()
            .and_then(|s| s.expiration_seconds)
            .unwrap_or(3600);
        let mut resp = req.clone();
        resp.status = Some(TokenRequestStatus {
            token: Some(format!("token-{}", st.token_requests.len())),
            expiration_timestamp: Some(Time(now + jiff::SignedDuration::from_secs(secs))),
        });
        Ok(resp)
    }
    async fn node_allocatable(&self) -> Result<BTreeMap<String, Quantity>, SourceError> {
        let mut st = self.st();
        st.allocatable_calls += 1;
        Ok(st.allocatable.clone())
    }
}
