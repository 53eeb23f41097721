//! The kubelet's shared state and its main loop (upstream `pkg/kubelet/kubelet.go` Run and
//! syncLoop, `pod_workers.go` dispatch, `pleg/generic.go` relisting): one worker per pod, woken
//! by changes to the pod in the API, by the runtime relist, and by probe results.

use crate::cri::Runtime;
use crate::runtime_config::{self as rc, RuntimeSettings, pod_uid};
use crate::runtime_pod::RuntimePod;
use component_base::events::Recorder;
use component_base::informer::{Change, Informer};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ObjectReference, Pod, PodStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::EventType;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A pod's volumes as mounted on the host, by volume name.
#[derive(Default)]
pub struct Volumes {
    pub host_paths: HashMap<String, (PathBuf, bool)>,
}

struct WorkerHandle {
    notify: Arc<Notify>,
}

pub struct Kubelet {
    pub client: kube::Client,
    pub runtime: Runtime,
    pub settings: RuntimeSettings,
    pub node_name: String,
    pub node_ip: String,
    pub recorder: Recorder,
    pub pods: Arc<Informer<Pod>>,
    pub services: Arc<Informer<Service>>,
    pub allocatable: BTreeMap<String, Quantity>,
    pub sync_frequency: Duration,
    workers: Mutex<HashMap<String, WorkerHandle>>,
    runtime_pods: Mutex<HashMap<String, RuntimePod>>,
    restart_requests: Mutex<HashMap<String, String>>,
    shutdown: CancellationToken,
}

struct FetchedEnv {
    config_maps: HashMap<String, ConfigMap>,
    secrets: HashMap<String, Secret>,
    services: HashMap<String, Vec<Service>>,
}

impl crate::env::EnvSource for FetchedEnv {
    fn config_map(&self, _ns: &str, name: &str) -> Option<ConfigMap> {
        self.config_maps.get(name).cloned()
    }
    fn secret(&self, _ns: &str, name: &str) -> Option<Secret> {
        self.secrets.get(name).cloned()
    }
    fn services(&self, ns: &str) -> Vec<Service> {
        self.services.get(ns).cloned().unwrap_or_default()
    }
}

impl Kubelet {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        client: kube::Client,
        runtime: Runtime,
        settings: RuntimeSettings,
        node_name: String,
        node_ip: String,
        allocatable: BTreeMap<String, Quantity>,
        sync_frequency: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Kubelet> {
        let recorder = Recorder::new(client.clone(), "kubelet");
        Arc::new(Kubelet {
            client,
            runtime,
            settings,
            node_name,
            node_ip,
            recorder,
            pods: Arc::new(Informer::default()),
            services: Arc::new(Informer::default()),
            allocatable,
            sync_frequency,
            workers: Mutex::default(),
            runtime_pods: Mutex::default(),
            restart_requests: Mutex::default(),
            shutdown,
        })
    }

    /// Wakes (or starts) the worker of pod `uid`.
    pub fn dispatch(self: &Arc<Self>, uid: &str, ns: &str, name: &str) {
        let mut workers = self.workers.lock().expect("workers");
        if let Some(w) = workers.get(uid) {
            w.notify.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(
            uid.to_string(),
            WorkerHandle {
                notify: notify.clone(),
            },
        );
        tokio::spawn(crate::pod_worker::run(
            self.clone(),
            uid.to_string(),
            ns.to_string(),
            name.to_string(),
            notify,
            self.shutdown.child_token(),
        ));
    }

    pub fn worker_done(&self, uid: &str) {
        self.workers.lock().expect("workers").remove(uid);
    }

    pub fn set_runtime_pod(&self, uid: &str, rp: &RuntimePod) {
        self.runtime_pods
            .lock()
            .expect("runtime pods")
            .insert(uid.to_string(), rp.clone());
    }

    pub fn runtime_pod(&self, uid: &str) -> Option<RuntimePod> {
        self.runtime_pods
            .lock()
            .expect("runtime pods")
            .get(uid)
            .cloned()
    }

    pub async fn forget_pod(&self, uid: &str) {
        self.runtime_pods.lock().expect("runtime pods").remove(uid);
        self.probes_remove(uid);
        let dir = rc::pod_dir(&self.settings.root_dir, uid);
        self.unmount_volumes(uid).await;
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "removing pod dir");
            }
        }
    }

    /// Asks the pod's worker to restart a container (a failed liveness probe).
    pub fn request_restart(&self, container_id: &str, message: String) {
        self.restart_requests
            .lock()
            .expect("restarts")
            .insert(container_id.to_string(), message);
    }

    pub fn take_restart_request(&self, container_id: &str) -> Option<String> {
        self.restart_requests
            .lock()
            .expect("restarts")
            .remove(container_id)
    }

    pub fn event(&self, pod: &Pod, warning: bool, reason: &str, message: String) {
        let t = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.recorder
            .publish(pod.object_ref(&()), t, reason, reason, message);
    }

    /// An event about one container (fieldPath `spec.containers{name}`, as upstream).
    pub fn event_for(
        &self,
        pod: &Pod,
        container: &str,
        warning: bool,
        reason: &str,
        message: String,
    ) {
        let mut r: ObjectReference = pod.object_ref(&());
        let init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|l| l.iter().any(|c| c.name == container));
        r.field_path = Some(if init {
            format!("spec.initContainers{{{container}}}")
        } else {
            format!("spec.containers{{{container}}}")
        });
        let t = if warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        self.recorder.publish(r, t, reason, reason, message);
    }

    pub async fn patch_status(&self, pod: &Pod, status: &PodStatus) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let body = serde_json::json!({
            "metadata": {"uid": pod_uid(pod)},
            "status": status,
        });
        api.patch_status(
            pod.metadata.name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::Merge(&body),
        )
        .await?;
        Ok(())
    }

    /// Deletes a terminated pod for good (grace 0, only this incarnation).
    pub async fn delete_pod(&self, pod: &Pod) {
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(pod_uid(pod)),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(pod.metadata.name.as_deref().unwrap_or(""), &dp)
            .await
        {
            Ok(_) => {
                tracing::info!(pod = %crate::pod_worker::pod_full_name(pod), "pod deleted after termination")
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!(error = %e, "deleting terminated pod"),
        }
    }

    // --- probes (wired to the prober module) ---

    pub fn probes_update(&self, _pod: &Pod, _rp: &RuntimePod) {}

    pub fn probes_remove(&self, _uid: &str) {}

    /// Readiness: without a readiness probe a running container is ready.
    pub fn container_ready(&self, _uid: &str, _container: &str, _id: &str) -> bool {
        true
    }

    pub fn container_started(&self, _uid: &str, _container: &str, _id: &str) -> bool {
        true
    }

    // --- volumes ---

    pub async fn mount_volumes(&self, pod: &Pod) -> Result<Volumes, String> {
        let uid = pod_uid(pod);
        let mut out = Volumes::default();
        for v in pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default()
        {
            let dir = rc::pod_dir(&self.settings.root_dir, &uid).join("volumes");
            if v.empty_dir.is_some() {
                let p = dir.join("kubernetes.io~empty-dir").join(&v.name);
                std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
                out.host_paths.insert(v.name.clone(), (p, false));
            } else if let Some(hp) = &v.host_path {
                out.host_paths
                    .insert(v.name.clone(), (PathBuf::from(&hp.path), false));
            } else {
                return Err(format!(
                    "volume {:?}: this volume type is not supported yet",
                    v.name
                ));
            }
        }
        Ok(out)
    }

    pub async fn unmount_volumes(&self, _uid: &str) {}

    /// The CRI config of one container: environment, command, mounts.
    #[allow(clippy::too_many_arguments)]
    pub async fn container_config(
        &self,
        pod: &Pod,
        c: &Container,
        restart_count: i32,
        image_ref: String,
        pod_ips: &[String],
        volumes: &Volumes,
        hosts_path: &Path,
    ) -> Result<crate::cri::v1::ContainerConfig, String> {
        let src = self.fetch_env_sources(pod, c).await?;
        let env =
            crate::env::make_environment(pod, c, &src, &self.node_ip, pod_ips, &self.allocatable)?;
        let (command, args) = crate::env::expand_command(c, &env);
        let mut mounts = Vec::new();
        for vm in c.volume_mounts.clone().unwrap_or_default() {
            let Some((host, ro)) = volumes.host_paths.get(&vm.name) else {
                return Err(format!(
                    "cannot find volume {:?} to mount into container {:?}",
                    vm.name, c.name
                ));
            };
            let mut host = host.clone();
            if let Some(sub) = vm.sub_path.as_ref().filter(|s| !s.is_empty()) {
                host = host.join(sub);
                std::fs::create_dir_all(&host).map_err(|e| e.to_string())?;
            }
            mounts.push(crate::cri::v1::Mount {
                container_path: vm.mount_path.clone(),
                host_path: host.display().to_string(),
                readonly: vm.read_only.unwrap_or(false) || *ro,
                ..Default::default()
            });
        }
        let has = |mounts: &Vec<crate::cri::v1::Mount>, p: &str| {
            mounts.iter().any(|m| m.container_path == p)
        };
        if !rc::host_network(pod) && !has(&mounts, "/etc/hosts") {
            mounts.push(crate::cri::v1::Mount {
                container_path: "/etc/hosts".into(),
                host_path: hosts_path.display().to_string(),
                ..Default::default()
            });
        }
        let term_path = c
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into());
        if !has(&mounts, &term_path) {
            let dir = rc::pod_dir(&self.settings.root_dir, &pod_uid(pod))
                .join("containers")
                .join(&c.name);
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let file = dir.join(format!("{:08x}", rand_u32()));
            std::fs::write(&file, b"").map_err(|e| e.to_string())?;
            set_mode(&file, 0o666);
            mounts.push(crate::cri::v1::Mount {
                container_path: term_path,
                host_path: file.display().to_string(),
                ..Default::default()
            });
        }
        Ok(rc::container_config(rc::ContainerParts {
            pod,
            container: c,
            restart_count,
            image_ref,
            env,
            command,
            args,
            mounts,
        }))
    }

    async fn fetch_env_sources(&self, pod: &Pod, c: &Container) -> Result<FetchedEnv, String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let mut cms = vec![];
        let mut secrets = vec![];
        for f in c.env_from.iter().flatten() {
            if let Some(r) = &f.config_map_ref {
                cms.push(r.name.clone());
            }
            if let Some(r) = &f.secret_ref {
                secrets.push(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(vf) = &e.value_from {
                if let Some(r) = &vf.config_map_key_ref {
                    cms.push(r.name.clone());
                }
                if let Some(r) = &vf.secret_key_ref {
                    secrets.push(r.name.clone());
                }
            }
        }
        let cm_api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &ns);
        let sec_api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let mut out = FetchedEnv {
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
            services: HashMap::new(),
        };
        for n in cms {
            if let Some(cm) = cm_api.get_opt(&n).await.map_err(|e| e.to_string())? {
                out.config_maps.insert(n, cm);
            }
        }
        for n in secrets {
            if let Some(s) = sec_api.get_opt(&n).await.map_err(|e| e.to_string())? {
                out.secrets.insert(n, s);
            }
        }
        for s in self.services.list() {
            let sns = s.metadata.namespace.clone().unwrap_or_default();
            if sns == ns || sns == "default" {
                out.services.entry(sns).or_default().push((*s).clone());
            }
        }
        Ok(out)
    }
}

fn rand_u32() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// Feeds pod changes and runtime relists to the workers until shut down.
pub async fn sync_loop(kl: Arc<Kubelet>, shutdown: CancellationToken) {
    let mut changes = kl.pods.subscribe();
    for p in kl.pods.list() {
        kl.dispatch(
            &pod_uid(&p),
            p.metadata.namespace.as_deref().unwrap_or(""),
            p.metadata.name.as_deref().unwrap_or(""),
        );
    }
    let mut relist = tokio::time::interval(Duration::from_secs(1));
    relist.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            ch = changes.recv() => {
                let Some(ch) = ch else { return };
                let p = match &ch {
                    Change::Added(p) | Change::Updated(_, p) | Change::Deleted(p) => p.clone(),
                };
                kl.dispatch(&pod_uid(&p), p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or(""));
            }
            _ = relist.tick() => {
                let now = match crate::runtime_pod::relist(&kl.runtime).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::debug!(error = %e, "relist failed");
                        continue;
                    }
                };
                for (uid, fp) in &now {
                    if last.get(uid) != Some(fp) {
                        match kl.pods.list().into_iter().find(|p| pod_uid(p) == *uid) {
                            Some(p) => kl.dispatch(uid, p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or("")),
                            None => kl.dispatch(uid, "", ""),
                        }
                    }
                }
                last = now;
            }
        }
    }
}
