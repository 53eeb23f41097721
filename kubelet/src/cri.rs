//! The CRI client: runtime.v1 RuntimeService and ImageService over the runtime's Unix socket
//! (upstream `pkg/kubelet/cri/remote/remote_runtime.go`, `remote_image.go`). Every call has a
//! deadline; errors keep the runtime's gRPC message, which ends up in pod status as upstream.

use hyper_util::rt::TokioIo;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

pub use k8s_cri::v1;

/// Upstream's default `--runtime-request-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// Printed as Go's gRPC does (`rpc error: code = Unavailable desc = ...`), as upstream's
    /// messages quote it.
    #[error("rpc error: code = {:?} desc = {}", .0.code(), .0.message())]
    Status(#[from] tonic::Status),
    #[error("connecting to the container runtime at {path}: {source}")]
    Connect {
        path: String,
        source: tonic::transport::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl CriError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::Status(s) if s.code() == tonic::Code::NotFound)
    }
}

pub type Result<T> = std::result::Result<T, CriError>;

/// A connection to the container runtime; cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    rt: RuntimeServiceClient<Channel>,
    img: ImageServiceClient<Channel>,
    timeout: Duration,
}

/// `unix:///run/containerd/containerd.sock` or a bare path.
pub fn socket_path(endpoint: &str) -> PathBuf {
    PathBuf::from(endpoint.strip_prefix("unix://").unwrap_or(endpoint))
}

fn req<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

impl Runtime {
    /// Connects lazily: the channel reconnects by itself when the runtime restarts.
    pub fn connect(endpoint: &str, timeout: Duration) -> Result<Runtime> {
        let path = socket_path(endpoint);
        let channel =
            Endpoint::try_from("http://[::]:50051")
                .map_err(|e| CriError::Connect {
                    path: path.display().to_string(),
                    source: e,
                })?
                .connect_timeout(Duration::from_secs(2))
                .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }));
        Ok(Runtime {
            rt: RuntimeServiceClient::new(channel.clone()).max_decoding_message_size(16 << 20),
            img: ImageServiceClient::new(channel).max_decoding_message_size(16 << 20),
            timeout,
        })
    }

    pub fn exists(endpoint: &str) -> bool {
        Path::new(&socket_path(endpoint)).exists()
    }

    pub async fn version(&self) -> Result<cri::VersionResponse> {
        let r = self
            .rt
            .clone()
            .version(req(cri::VersionRequest::default(), Duration::from_secs(5)))
            .await?;
        Ok(r.into_inner())
    }

    /// The runtime's conditions (RuntimeReady, NetworkReady).
    pub async fn status(&self) -> Result<cri::RuntimeStatus> {
        let r = self
            .rt
            .clone()
            .status(req(
                cri::StatusRequest { verbose: false },
                Duration::from_secs(5),
            ))
            .await?;
        r.into_inner()
            .status
            .ok_or_else(|| CriError::Other("runtime returned no status".into()))
    }

    pub async fn run_pod_sandbox(&self, config: cri::PodSandboxConfig) -> Result<String> {
        let r = self
            .rt
            .clone()
            .run_pod_sandbox(req(
                cri::RunPodSandboxRequest {
                    config: Some(config),
                    runtime_handler: String::new(),
                },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().pod_sandbox_id)
    }

    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .stop_pod_sandbox(req(
                cri::StopPodSandboxRequest {
                    pod_sandbox_id: id.to_string(),
                },
                self.timeout,
            ))
            .await?;
        Ok(())
    }

    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .remove_pod_sandbox(req(
                cri::RemovePodSandboxRequest {
                    pod_sandbox_id: id.to_string(),
                },
                self.timeout,
            ))
            .await?;
        Ok(())
    }

    pub async fn pod_sandbox_status(&self, id: &str) -> Result<cri::PodSandboxStatus> {
        let r = self
            .rt
            .clone()
            .pod_sandbox_status(req(
                cri::PodSandboxStatusRequest {
                    pod_sandbox_id: id.to_string(),
                    verbose: false,
                },
                self.timeout,
            ))
            .await?;
        r.into_inner()
            .status
            .ok_or_else(|| CriError::Other(format!("no status for sandbox {id}")))
    }

    pub async fn list_pod_sandboxes(&self) -> Result<Vec<cri::PodSandbox>> {
        let r = self
            .rt
            .clone()
            .list_pod_sandbox(req(
                cri::ListPodSandboxRequest { filter: None },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().items)
    }

    /// The sandboxes labelled with `key=value` (e.g. the pod uid).
    pub async fn list_pod_sandboxes_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<cri::PodSandbox>> {
        let filter = cri::PodSandboxFilter {
            label_selector: [(key.to_string(), value.to_string())].into(),
            ..Default::default()
        };
        let r = self
            .rt
            .clone()
            .list_pod_sandbox(req(
                cri::ListPodSandboxRequest {
                    filter: Some(filter),
                },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().items)
    }

    /// The containers labelled with `key=value`.
    pub async fn list_containers_labelled(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Vec<cri::Container>> {
        let filter = cri::ContainerFilter {
            label_selector: [(key.to_string(), value.to_string())].into(),
            ..Default::default()
        };
        let r = self
            .rt
            .clone()
            .list_containers(req(
                cri::ListContainersRequest {
                    filter: Some(filter),
                },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().containers)
    }

    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: cri::ContainerConfig,
        sandbox_config: cri::PodSandboxConfig,
    ) -> Result<String> {
        let r = self
            .rt
            .clone()
            .create_container(req(
                cri::CreateContainerRequest {
                    pod_sandbox_id: sandbox_id.to_string(),
                    config: Some(config),
                    sandbox_config: Some(sandbox_config),
                },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().container_id)
    }

    pub async fn start_container(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .start_container(req(
                cri::StartContainerRequest {
                    container_id: id.to_string(),
                },
                self.timeout,
            ))
            .await?;
        Ok(())
    }

    /// Stops a container: SIGTERM (or the image's stop signal), SIGKILL after `grace`.
    pub async fn stop_container(&self, id: &str, grace: i64) -> Result<()> {
        let deadline = self.timeout + Duration::from_secs(grace.max(0) as u64);
        self.rt
            .clone()
            .stop_container(req(
                cri::StopContainerRequest {
                    container_id: id.to_string(),
                    timeout: grace.max(0),
                },
                deadline,
            ))
            .await?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .remove_container(req(
                cri::RemoveContainerRequest {
                    container_id: id.to_string(),
                },
                self.timeout,
            ))
            .await?;
        Ok(())
    }

    pub async fn list_containers(&self) -> Result<Vec<cri::Container>> {
        let r = self
            .rt
            .clone()
            .list_containers(req(
                cri::ListContainersRequest { filter: None },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<cri::ContainerStatus> {
        let r = self
            .rt
            .clone()
            .container_status(req(
                cri::ContainerStatusRequest {
                    container_id: id.to_string(),
                    verbose: false,
                },
                self.timeout,
            ))
            .await?;
        r.into_inner()
            .status
            .ok_or_else(|| CriError::Other(format!("no status for container {id}")))
    }

    /// Runs a command in a container and waits for it (exec probes, preStop exec hooks).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<cri::ExecSyncResponse> {
        let r = self
            .rt
            .clone()
            .exec_sync(req(
                cri::ExecSyncRequest {
                    container_id: id.to_string(),
                    cmd,
                    timeout: timeout.as_secs() as i64,
                },
                timeout + Duration::from_secs(2),
            ))
            .await?;
        Ok(r.into_inner())
    }

    /// A URL on the runtime's streaming server for an interactive exec.
    pub async fn exec(&self, r: cri::ExecRequest) -> Result<String> {
        Ok(self
            .rt
            .clone()
            .exec(req(r, self.timeout))
            .await?
            .into_inner()
            .url)
    }

    pub async fn attach(&self, r: cri::AttachRequest) -> Result<String> {
        Ok(self
            .rt
            .clone()
            .attach(req(r, self.timeout))
            .await?
            .into_inner()
            .url)
    }

    pub async fn port_forward(&self, r: cri::PortForwardRequest) -> Result<String> {
        Ok(self
            .rt
            .clone()
            .port_forward(req(r, self.timeout))
            .await?
            .into_inner()
            .url)
    }

    pub async fn reopen_container_log(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .reopen_container_log(req(
                cri::ReopenContainerLogRequest {
                    container_id: id.to_string(),
                },
                self.timeout,
            ))
            .await?;
        Ok(())
    }

    pub async fn list_images(&self) -> Result<Vec<cri::Image>> {
        let r = self
            .img
            .clone()
            .list_images(req(cri::ListImagesRequest { filter: None }, self.timeout))
            .await?;
        Ok(r.into_inner().images)
    }

    /// The image if present.
    pub async fn image_status(&self, image: &str) -> Result<Option<cri::Image>> {
        let r = self
            .img
            .clone()
            .image_status(req(
                cri::ImageStatusRequest {
                    image: Some(cri::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                    verbose: false,
                },
                self.timeout,
            ))
            .await?;
        Ok(r.into_inner().image)
    }

    /// Pulls an image; returns its reference (the image ID).
    pub async fn pull_image(
        &self,
        image: &str,
        sandbox: Option<cri::PodSandboxConfig>,
    ) -> Result<String> {
        let r = self
            .img
            .clone()
            .pull_image(req(
                cri::PullImageRequest {
                    image: Some(cri::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                    auth: None,
                    sandbox_config: sandbox,
                },
                // Upstream bounds pulls by progress, not time; a local pull is quick.
                Duration::from_secs(300),
            ))
            .await?;
        Ok(r.into_inner().image_ref)
    }

    pub async fn remove_image(&self, image: &str) -> Result<()> {
        self.img
            .clone()
            .remove_image(req(
                cri::RemoveImageRequest {
                    image: Some(cri::ImageSpec {
                        image: image.to_string(),
                        ..Default::default()
                    }),
                },
                self.timeout,
            ))
            .await?;
        Ok(())
    }

    pub async fn image_fs_info(&self) -> Result<cri::ImageFsInfoResponse> {
        Ok(self
            .img
            .clone()
            .image_fs_info(req(cri::ImageFsInfoRequest {}, self.timeout))
            .await?
            .into_inner())
    }
}
