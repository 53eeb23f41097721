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
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// A pod's volumes as mounted on the host, by volume name.
pub type Volumes = crate::volumes::PodVolumes;

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
    pub metrics: crate::metrics::Metrics,
    pub volumes: crate::volumes::VolumeManager,
    pub probes: crate::prober::ProbeManager,
    workers: Mutex<HashMap<String, WorkerHandle>>,
    static_pods: Mutex<HashMap<String, Arc<Pod>>>,
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
        metrics: crate::metrics::Metrics,
        shutdown: CancellationToken,
    ) -> (
        Arc<Kubelet>,
        tokio::sync::mpsc::UnboundedReceiver<crate::prober::ProbeEvent>,
    ) {
        let recorder = Recorder::new(client.clone(), "kubelet");
        let (probe_tx, probe_rx) = tokio::sync::mpsc::unbounded_channel();
        let volumes = crate::volumes::VolumeManager::new(
            client.clone(),
            settings.root_dir.clone(),
            node_name.clone(),
        );
        let probes = crate::prober::ProbeManager::new(runtime.clone(), probe_tx);
        let kl = Arc::new(Kubelet {
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
            metrics,
            volumes,
            probes,
            workers: Mutex::default(),
            static_pods: Mutex::default(),
            runtime_pods: Mutex::default(),
            restart_requests: Mutex::default(),
            shutdown,
        });
        (kl, probe_rx)
    }

    /// The pod with this uid, if the kubelet has it (static pods first, then the API's).
    pub fn pod_by_uid(&self, uid: &str) -> Option<Arc<Pod>> {
        if let Some(p) = self
            .static_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
        {
            return Some(p.clone());
        }
        self.pods
            .list()
            .into_iter()
            .find(|p| pod_uid(p) == uid && !crate::static_pods::is_mirror(p))
    }

    /// The pod a worker runs: its static pod, or the API's pod `ns/name` with that uid.
    pub fn lookup(&self, uid: &str, ns: &str, name: &str) -> Option<Arc<Pod>> {
        if let Some(p) = self
            .static_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
        {
            return Some(p.clone());
        }
        self.pods
            .get(Some(ns), name)
            .filter(|p| pod_uid(p) == uid && !crate::static_pods::is_mirror(p))
    }

    /// The uid of the static pod `ns/name`, if there is one.
    pub fn static_uid(&self, ns: &str, name: &str) -> Option<String> {
        self.static_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, p)| {
                p.metadata.namespace.as_deref().unwrap_or("default") == ns
                    && p.metadata.name.as_deref() == Some(name)
            })
            .map(|(uid, _)| uid.clone())
    }

    pub fn is_static(&self, pod: &Pod) -> bool {
        self.static_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&pod_uid(pod))
    }

    /// Replaces the set of static pods; returns the previous one.
    pub fn replace_static_pods(&self, fresh: HashMap<String, Pod>) -> HashMap<String, Pod> {
        let mut map = self.static_pods.lock().unwrap_or_else(|p| p.into_inner());
        let old = std::mem::take(&mut *map);
        *map = fresh.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        old.into_iter().map(|(k, v)| (k, (*v).clone())).collect()
    }

    /// The status the API has for the pod (a static pod's is on its mirror pod).
    pub fn api_status(&self, pod: &Pod) -> Option<PodStatus> {
        if self.is_static(pod) {
            return self
                .pods
                .get(
                    pod.metadata.namespace.as_deref(),
                    pod.metadata.name.as_deref().unwrap_or(""),
                )
                .filter(|m| crate::static_pods::is_mirror(m))
                .and_then(|m| m.status.clone());
        }
        pod.status.clone()
    }

    /// Acts on what the prober reports until shut down.
    pub async fn handle_probe_events(
        self: Arc<Self>,
        mut rx: tokio::sync::mpsc::UnboundedReceiver<crate::prober::ProbeEvent>,
    ) {
        use crate::prober::ProbeEvent;
        while let Some(ev) = rx.recv().await {
            match ev {
                ProbeEvent::StatusChanged { pod_uid } => self.wake(&pod_uid),
                ProbeEvent::Restart {
                    pod_uid,
                    container_id,
                    message,
                    ..
                } => {
                    self.request_restart(&container_id, message);
                    self.wake(&pod_uid);
                }
                ProbeEvent::Event {
                    pod_uid,
                    warning,
                    reason,
                    message,
                } => {
                    if let Some(p) = self.pod_by_uid(&pod_uid) {
                        self.event(&p, warning, &reason, message);
                    }
                }
            }
        }
    }

    fn wake(self: &Arc<Self>, uid: &str) {
        if let Some(p) = self.pod_by_uid(uid) {
            self.dispatch(
                uid,
                p.metadata.namespace.as_deref().unwrap_or(""),
                p.metadata.name.as_deref().unwrap_or(""),
            );
        }
    }

    /// Wakes (or starts) the worker of pod `uid`.
    pub fn dispatch(self: &Arc<Self>, uid: &str, ns: &str, name: &str) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
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
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    pub fn set_runtime_pod(&self, uid: &str, rp: &RuntimePod) {
        self.runtime_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid.to_string(), rp.clone());
    }

    pub fn runtime_pod(&self, uid: &str) -> Option<RuntimePod> {
        self.runtime_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .cloned()
    }

    pub async fn forget_pod(&self, uid: &str) {
        self.runtime_pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
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
            .unwrap_or_else(|p| p.into_inner())
            .insert(container_id.to_string(), message);
    }

    pub fn take_restart_request(&self, container_id: &str) -> Option<String> {
        self.restart_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(container_id)
    }

    /// Whether a liveness (or startup) probe asked for this container to be restarted.
    pub fn restart_requested(&self, container_id: &str) -> Option<String> {
        self.take_restart_request(container_id).or_else(|| {
            self.probes
                .failed_liveness(container_id)
                .then(|| "Container failed liveness probe, will be restarted".to_string())
        })
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
        // A static pod's status goes to its mirror pod (which has its own uid).
        let body = if self.is_static(pod) {
            serde_json::json!({ "status": status })
        } else {
            serde_json::json!({
                "metadata": {"uid": pod_uid(pod)},
                "status": status,
            })
        };
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

    pub fn probes_update(&self, pod: &Pod, status: &PodStatus) {
        self.probes.update_pod(pod, status);
    }

    pub fn probes_remove(&self, uid: &str) {
        self.probes.remove_pod(uid);
    }

    /// Readiness of a running container (without a readiness probe: ready once started).
    pub fn container_ready(&self, uid: &str, container: &str, id: &str) -> bool {
        self.probes.is_ready(uid, container, id)
    }

    pub fn container_started(&self, uid: &str, container: &str, id: &str) -> bool {
        self.probes.is_started(uid, container, id)
    }

    // --- volumes ---

    /// Sets up (or refreshes) the pod's volumes; on failure records one FailedMount event per
    /// volume and returns upstream's "unmounted volumes" message.
    pub async fn mount_volumes(&self, pod: &Pod) -> Result<Volumes, String> {
        match self.volumes.mount_pod_volumes(pod).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if let crate::volumes::VolumeError::SetUp(failures) = &e {
                    for f in failures {
                        self.event(pod, true, "FailedMount", f.to_string());
                    }
                }
                Err(format!(
                    "unmounted volumes=[{}], unattached volumes=[], failed to process volumes=[]: {e}",
                    e.unmounted_volumes().join(" ")
                ))
            }
        }
    }

    pub async fn unmount_volumes(&self, uid: &str) {
        if let Err(e) = self.volumes.cleanup_pod(uid).await {
            tracing::warn!(%uid, error = %e, "cleaning up pod volumes");
        }
    }

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
        let env_map: HashMap<String, String> = env.iter().cloned().collect();
        let mut mounts = crate::volumes::container_mounts(pod, c, volumes, &env_map)
            .map_err(|e| e.to_string())?;
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

/// Whether an update to a pod is more than a status change.
fn needs_sync(old: &Pod, new: &Pod) -> bool {
    let (a, b) = (&old.metadata, &new.metadata);
    old.spec != new.spec
        || a.deletion_timestamp != b.deletion_timestamp
        || a.deletion_grace_period_seconds != b.deletion_grace_period_seconds
        || a.labels != b.labels
        || a.annotations != b.annotations
        || a.uid != b.uid
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
                    // The kubelet's own status updates do not need a sync (upstream's pod
                    // config ignores status-only changes too).
                    Change::Updated(old, new) if !needs_sync(old, new) => continue,
                    Change::Added(p) | Change::Updated(_, p) | Change::Deleted(p) => p.clone(),
                };
                // Mirror pods only show static pods; the file source runs those.
                if crate::static_pods::is_mirror(&p) {
                    continue;
                }
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
                        match kl.pod_by_uid(uid) {
                            Some(p) => kl.dispatch(uid, p.metadata.namespace.as_deref().unwrap_or(""), p.metadata.name.as_deref().unwrap_or("")),
                            None => kl.dispatch(uid, "", ""),
                        }
                    }
                }
                last = now;
                let (mut pods, mut containers) = (0, 0);
                for rp in kl.runtime_pods.lock().unwrap_or_else(|p| p.into_inner()).values() {
                    pods += i64::from(rp.ready_sandbox().is_some());
                    containers += rp.running().count() as i64;
                }
                kl.metrics.set_running(pods, containers);
            }
        }
    }
}

/// What the kubelet's HTTPS server needs to know about the pods (logs, exec, `/pods`).
pub struct ServerPods(pub Arc<Kubelet>);

impl crate::server::PodSource for ServerPods {
    fn pods(&self) -> Vec<Pod> {
        self.0
            .pods
            .list()
            .into_iter()
            .map(|p| (*p).clone())
            .collect()
    }

    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.0.pods.get(Some(namespace), name).map(|p| (*p).clone())
    }

    fn runtime_uid(&self, pod: &Pod, uid: Option<&str>) -> Option<String> {
        let own = pod.metadata.uid.clone().unwrap_or_default();
        if uid.is_some_and(|u| !u.is_empty() && u != own) {
            return None;
        }
        if !crate::static_pods::is_mirror(pod) {
            return Some(own);
        }
        // A mirror pod: the containers run under its static pod's uid.
        let (ns, name) = (
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
        );
        self.0.static_uid(ns, name).or(Some(own))
    }

    fn container_id(&self, pod_uid: &str, container: &str) -> Option<String> {
        let rp = self.0.runtime_pod(pod_uid)?;
        rp.latest(container)
            .filter(|c| c.state == crate::runtime_pod::State::Running)
            .map(|c| c.id.clone())
    }

    fn sandbox_id(&self, pod_uid: &str) -> Option<String> {
        self.0
            .runtime_pod(pod_uid)?
            .ready_sandbox()
            .map(|s| s.id.clone())
    }
}
