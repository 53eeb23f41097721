//! The pod volume manager (upstream `pkg/kubelet/volumemanager` with the in-tree plugins of
//! `pkg/volume/{emptydir,configmap,secret,projected,downwardapi,hostpath}`): sets up every
//! volume of a pod under `<root-dir>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`,
//! refreshes API-backed contents on every sync, turns a container's volumeMounts into CRI
//! mounts and tears everything down when the pod is gone.
//!
//! Limitations: file ownership (`fsGroup`, `user`/`defaultUser`) is not applied and
//! `sizeLimit` of disk-backed emptyDirs is not enforced; configMaps and secrets are read
//! with a GET on each sync instead of upstream's watch-based cache; persistentVolumeClaim,
//! ephemeral, image, CSI and network volumes are not supported ("no volume plugin matched");
//! projected clusterTrustBundle and podCertificate sources fail with an explicit error.

pub mod atomic_writer;
mod configmap;
mod downward_api;
mod empty_dir;
mod host_path;
mod mounts;
mod projected;
mod secret;
#[cfg(test)]
mod test_support;
mod token;

pub use mounts::container_mounts;

use async_trait::async_trait;
use atomic_writer::{AtomicWriter, Payload};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret, ServiceAccount, Volume};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One set-up volume of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountedVolume {
    /// What containers bind-mount (the volume dir, or the hostPath itself).
    pub host_path: PathBuf,
    /// The plugin mounts it read-only whatever the volumeMount says (configMap, secret,
    /// downwardAPI, projected).
    pub read_only: bool,
}

/// The pod's volumes by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodVolumes {
    pub volumes: HashMap<String, MountedVolume>,
}

/// One volume that could not be set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetUpFailure {
    pub volume: String,
    /// The plugin's own message, e.g. `configmap "x" not found`.
    pub message: String,
}

impl fmt::Display for SetUpFailure {
    /// The upstream `FailedMount` event message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MountVolume.SetUp failed for volume \"{}\" : {}",
            self.volume, self.message
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// Some volumes of the pod could not be set up: one `FailedMount` warning event per
    /// entry (its Display), the others are set up anyway.
    #[error("{}", join_failures(.0))]
    SetUp(Vec<SetUpFailure>),
    /// The container's volumeMounts cannot be satisfied (`CreateContainerConfigError`).
    #[error("{0}")]
    Mounts(String),
    /// Tearing down the pod's directory failed.
    #[error("{0}")]
    Cleanup(String),
}

impl VolumeError {
    /// Names of the volumes that failed to set up (upstream's `unmounted volumes=[...]`).
    pub fn unmounted_volumes(&self) -> Vec<String> {
        match self {
            VolumeError::SetUp(f) => f.iter().map(|f| f.volume.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

fn join_failures(f: &[SetUpFailure]) -> String {
    f.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// An API read failed; `not_found` distinguishes a 404.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceError {
    pub not_found: bool,
    pub message: String,
}

impl SourceError {
    pub fn not_found(message: impl Into<String>) -> Self {
        SourceError {
            not_found: true,
            message: message.into(),
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        SourceError {
            not_found: false,
            message: message.into(),
        }
    }
}

impl From<kube::Error> for SourceError {
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(s) => SourceError {
                not_found: s.code == 404,
                message: s.message,
            },
            other => SourceError::other(other.to_string()),
        }
    }
}

/// The API reads the volume plugins need (abstracted so tests need no apiserver).
#[async_trait]
pub trait ObjectSource: Send + Sync {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<ConfigMap, SourceError>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Secret, SourceError>;
    /// `POST /api/v1/namespaces/{ns}/serviceaccounts/{sa}/token`.
    async fn create_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, SourceError>;
    /// This node's `status.allocatable`.
    async fn node_allocatable(&self) -> Result<BTreeMap<String, Quantity>, SourceError>;
}

/// The real source: the apiserver through `kube::Client`.
pub struct KubeSource {
    client: kube::Client,
    node_name: String,
}

impl KubeSource {
    pub fn new(client: kube::Client, node_name: String) -> Self {
        KubeSource { client, node_name }
    }
}

#[async_trait]
impl ObjectSource for KubeSource {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<ConfigMap, SourceError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get(name).await?)
    }
    async fn secret(&self, namespace: &str, name: &str) -> Result<Secret, SourceError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        Ok(api.get(name).await?)
    }
    async fn create_token(
        &self,
        namespace: &str,
        service_account: &str,
        request: &TokenRequest,
    ) -> Result<TokenRequest, SourceError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        Ok(api
            .create_token_request(service_account, &Default::default(), request)
            .await?)
    }
    async fn node_allocatable(&self) -> Result<BTreeMap<String, Quantity>, SourceError> {
        let api: Api<Node> = Api::all(self.client.clone());
        let node = api.get(&self.node_name).await?;
        Ok(node.status.and_then(|s| s.allocatable).unwrap_or_default())
    }
}

/// Sets up, refreshes and tears down pod volumes. Calls for one pod must not overlap (the
/// pod worker serializes them); different pods may be handled concurrently.
pub struct VolumeManager {
    source: Arc<dyn ObjectSource>,
    root_dir: PathBuf,
    tokens: token::TokenManager,
    /// Back secret, projected and `medium: Memory` volumes with tmpfs (upstream); off only
    /// for unprivileged runs, where they become plain directories.
    use_tmpfs: bool,
}

/// Per-sync state shared by the volumes of one pod.
pub(crate) struct PodContext<'a> {
    pub pod: &'a Pod,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
    source: &'a dyn ObjectSource,
    tokens: &'a token::TokenManager,
    allocatable: tokio::sync::OnceCell<Result<BTreeMap<String, Quantity>, String>>,
}

impl PodContext<'_> {
    /// Node allocatable, fetched at most once per sync and only when needed.
    pub async fn allocatable(&self) -> Result<&BTreeMap<String, Quantity>, String> {
        self.allocatable
            .get_or_init(|| async { self.source.node_allocatable().await.map_err(|e| e.message) })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// Upstream's `EscapeQualifiedNameForDisk("kubernetes.io/<plugin>")`.
const PLUGIN_PREFIX: &str = "kubernetes.io~";

impl VolumeManager {
    pub fn new(client: kube::Client, root_dir: PathBuf, node_name: String) -> Self {
        Self::with_source(Arc::new(KubeSource::new(client, node_name)), root_dir)
    }

    pub fn with_source(source: Arc<dyn ObjectSource>, root_dir: PathBuf) -> Self {
        VolumeManager {
            source,
            root_dir,
            tokens: token::TokenManager::default(),
            use_tmpfs: true,
        }
    }

    /// Disables tmpfs (for an unprivileged kubelet): memory-backed volumes become plain
    /// directories.
    pub fn without_tmpfs(mut self) -> Self {
        self.use_tmpfs = false;
        self
    }

    /// `<root>/pods/<uid>`.
    pub fn pod_dir(&self, pod_uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(pod_uid)
    }

    /// `<root>/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
    pub fn volume_dir(&self, pod_uid: &str, plugin: &str, volume: &str) -> PathBuf {
        self.pod_dir(pod_uid)
            .join("volumes")
            .join(format!("{PLUGIN_PREFIX}{plugin}"))
            .join(volume)
    }

    pub async fn mount_pod_volumes(&self, pod: &Pod) -> Result<PodVolumes, VolumeError> {
        let meta = &pod.metadata;
        let uid = meta.uid.as_deref().unwrap_or_default();
        if uid.is_empty() || uid.contains('/') || uid.starts_with('.') {
            return Err(VolumeError::SetUp(vec![SetUpFailure {
                volume: String::new(),
                message: format!("invalid pod uid {uid:?}"),
            }]));
        }
        let ctx = PodContext {
            pod,
            namespace: meta.namespace.as_deref().unwrap_or("default"),
            name: meta.name.as_deref().unwrap_or_default(),
            uid,
            source: self.source.as_ref(),
            tokens: &self.tokens,
            allocatable: tokio::sync::OnceCell::new(),
        };
        let mut out = PodVolumes::default();
        let mut failures = Vec::new();
        let volumes = pod.spec.as_ref().and_then(|s| s.volumes.as_deref());
        for vol in volumes.unwrap_or_default() {
            match self.set_up(&ctx, vol).await {
                Ok(mv) => {
                    out.volumes.insert(vol.name.clone(), mv);
                }
                Err(message) => {
                    tracing::warn!(pod = %format!("{}/{}", ctx.namespace, ctx.name),
                        volume = %vol.name, %message, "MountVolume.SetUp failed");
                    failures.push(SetUpFailure {
                        volume: vol.name.clone(),
                        message,
                    });
                }
            }
        }
        if failures.is_empty() {
            Ok(out)
        } else {
            Err(VolumeError::SetUp(failures))
        }
    }

    async fn set_up(&self, ctx: &PodContext<'_>, vol: &Volume) -> Result<MountedVolume, String> {
        if let Some(hp) = &vol.host_path {
            host_path::check_type(Path::new(&hp.path), hp.type_.as_deref().unwrap_or(""))?;
            return Ok(MountedVolume {
                host_path: PathBuf::from(&hp.path),
                read_only: false,
            });
        }
        if let Some(ed) = &vol.empty_dir {
            let dir = self.volume_dir(ctx.uid, "empty-dir", &vol.name);
            let memory = match ed.medium.as_deref().unwrap_or("") {
                "" => false,
                "Memory" => true,
                m if m.starts_with("HugePages") => {
                    return Err(format!("emptyDir medium {m:?} is not supported"));
                }
                m => return Err(format!("unknown storage medium {m:?}")),
            };
            self.set_up_dir(ctx, &dir, memory, ed.size_limit.as_ref())
                .await?;
            return Ok(MountedVolume {
                host_path: dir,
                read_only: false,
            });
        }
        let (plugin, memory, payload): (&str, bool, Payload) = if let Some(cm) = &vol.config_map {
            (
                "configmap",
                false,
                configmap::volume_payload(ctx, cm).await?,
            )
        } else if let Some(s) = &vol.secret {
            ("secret", true, secret::volume_payload(ctx, s).await?)
        } else if let Some(d) = &vol.downward_api {
            let payload = downward_api::volume_payload(ctx, d).await?;
            ("downward-api", false, payload)
        } else if let Some(p) = &vol.projected {
            ("projected", true, projected::volume_payload(ctx, p).await?)
        } else {
            return Err("no volume plugin matched".into());
        };
        let dir = self.volume_dir(ctx.uid, plugin, &vol.name);
        self.set_up_dir(ctx, &dir, memory, None).await?;
        let writer = AtomicWriter::new(&dir).map_err(|e| e.to_string())?;
        writer.write(&payload)?;
        Ok(MountedVolume {
            host_path: dir,
            read_only: true,
        })
    }

    /// The emptyDir part every plugin wraps: a 0777 directory, tmpfs-backed if `memory` (the
    /// tmpfs root keeps its own 1777 mode, as upstream).
    async fn set_up_dir(
        &self,
        ctx: &PodContext<'_>,
        dir: &Path,
        memory: bool,
        size_limit: Option<&Quantity>,
    ) -> Result<(), String> {
        empty_dir::ensure_dir(dir)?;
        if memory && self.use_tmpfs && !empty_dir::is_mount_point(dir)? {
            let allocatable = ctx.allocatable().await.ok();
            let node_memory = allocatable.and_then(|a| a.get("memory"));
            let size = empty_dir::memory_size_limit(ctx.pod, node_memory, size_limit);
            empty_dir::mount_tmpfs(dir, size).await?;
        }
        Ok(())
    }

    /// Unmounts every mount below the pod's directory, then removes it (never crossing into
    /// another filesystem). Forgets the pod's cached service-account tokens.
    pub async fn cleanup_pod(&self, pod_uid: &str) -> Result<(), VolumeError> {
        if pod_uid.is_empty() || pod_uid.contains('/') || pod_uid.starts_with('.') {
            return Err(VolumeError::Cleanup(format!("invalid pod uid {pod_uid:?}")));
        }
        self.tokens.forget_pod(pod_uid);
        let dir = self.pod_dir(pod_uid);
        if std::fs::symlink_metadata(&dir).is_err() {
            return Ok(());
        }
        empty_dir::unmount_all_below(&dir)
            .await
            .map_err(VolumeError::Cleanup)?;
        empty_dir::remove_all_one_filesystem(&dir).map_err(VolumeError::Cleanup)
    }

    /// Uids of the pods that have a directory under `<root>/pods`.
    pub fn pod_dirs(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.root_dir.join("pods")) else {
            return Vec::new();
        };
        let mut uids: Vec<String> = rd
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        uids.sort();
        uids
    }
}

/// `defaultMode`, `0644` when unset.
pub(crate) fn default_mode(mode: Option<i32>) -> u32 {
    mode.map_or(0o644, |m| m as u32 & 0o7777)
}

/// Upstream's error aggregate: one message as is, several as `[a, b]` (duplicates dropped).
pub(crate) fn aggregate(errors: Vec<String>) -> Result<(), String> {
    let mut uniq: Vec<String> = Vec::new();
    for e in errors {
        if !uniq.contains(&e) {
            uniq.push(e);
        }
    }
    match uniq.len() {
        0 => Ok(()),
        1 => Err(uniq.remove(0)),
        _ => Err(format!("[{}]", uniq.join(", "))),
    }
}

#[cfg(test)]
mod tests;
