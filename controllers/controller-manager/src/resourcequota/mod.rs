//! resourcequota-controller (mirrors upstream `pkg/controller/resourcequota/resource_quota_controller.go`
//! and the evaluators in `pkg/quota/v1/evaluator/core`): keeps each ResourceQuota's
//! `status.hard` equal to `spec.hard` and `status.used` to what its namespace consumes.

pub mod quantity;

use crate::ControllerContext;
use crate::endpoints::support::{on_change, shut_down_on_cancel};
use component_base::informer::{Change, Informer, key_of};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota,
    ResourceQuotaStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::{ListParams, PostParams};
use quantity::Milli;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Upstream `--resource-quota-sync-period` default.
const FULL_RESYNC: Duration = Duration::from_secs(300);

struct Controller {
    client: kube::Client,
    quotas: Arc<Informer<ResourceQuota>>,
    pods: Arc<Informer<Pod>>,
    services: Arc<Informer<Service>>,
    configmaps: Arc<Informer<ConfigMap>>,
    secrets: Arc<Informer<Secret>>,
    pvcs: Arc<Informer<PersistentVolumeClaim>>,
    rcs: Arc<Informer<ReplicationController>>,
    queue: Arc<WorkQueue<String>>,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        quotas: ctx.informers.informer(),
        pods: ctx.informers.informer(),
        services: ctx.informers.informer(),
        configmaps: ctx.informers.informer(),
        secrets: ctx.informers.informer(),
        pvcs: ctx.informers.informer(),
        rcs: ctx.informers.informer(),
        queue: WorkQueue::new("resourcequota_primary"),
    });
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        let synced = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async {
                c.quotas.wait_synced().await;
                c.pods.wait_synced().await;
                c.services.wait_synced().await;
                c.configmaps.wait_synced().await;
                c.secrets.wait_synced().await;
                c.pvcs.wait_synced().await;
                c.rcs.wait_synced().await;
            } => true,
        };
        if !synced {
            return Ok(());
        }
        let q = c.queue.clone();
        on_change(&c.quotas, &shutdown, move |ch: Change<ResourceQuota>| {
            q.add(key_of(ch.object().as_ref()));
        });
        c.replenish(&c.pods, &shutdown);
        c.replenish(&c.services, &shutdown);
        c.replenish(&c.configmaps, &shutdown);
        c.replenish(&c.secrets, &shutdown);
        c.replenish(&c.pvcs, &shutdown);
        c.replenish(&c.rcs, &shutdown);
        {
            let c = c.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(FULL_RESYNC) => {}
                    }
                    for rq in c.quotas.list() {
                        c.queue.add(key_of(rq.as_ref()));
                    }
                }
            });
        }
        shut_down_on_cancel(&c.queue, &shutdown);
        let cc = c.clone();
        run_workers(c.queue.clone(), 5, move |key: String| {
            let c = cc.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    })
}

impl Controller {
    /// A change to a quota-tracked object re-syncs the quotas of its namespace.
    fn replenish<K>(
        self: &Arc<Self>,
        inf: &Informer<K>,
        shutdown: &tokio_util::sync::CancellationToken,
    ) where
        K: component_base::informer::Informable,
    {
        let c = self.clone();
        on_change(inf, shutdown, move |ch: Change<K>| {
            let ns = kube::ResourceExt::namespace(ch.object().as_ref()).unwrap_or_default();
            for rq in c.quotas.list_namespace(&ns) {
                c.queue.add(key_of(rq.as_ref()));
            }
        });
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let Some(rq) = self.quotas.get_by_key(key) else {
            return Ok(());
        };
        let ns = rq.metadata.namespace.clone().unwrap_or_default();
        let spec = rq.spec.clone().unwrap_or_default();
        let hard = spec.hard.clone().unwrap_or_default();
        let scopes = spec.scopes.clone().unwrap_or_default();
        let mut used: BTreeMap<String, Quantity> = BTreeMap::new();
        for name in hard.keys() {
            if let Some(v) = self.usage(&ns, name, &scopes).await? {
                used.insert(name.clone(), Quantity(v.format()));
            }
        }
        let cur = rq.status.clone().unwrap_or_default();
        let same = |a: &Option<BTreeMap<String, Quantity>>, b: &BTreeMap<String, Quantity>| {
            let a = a.clone().unwrap_or_default();
            a.len() == b.len()
                && a.iter().all(|(k, v)| {
                    b.get(k)
                        .is_some_and(|w| quantity::parse(&v.0) == quantity::parse(&w.0))
                })
        };
        if same(&cur.hard, &hard) && same(&cur.used, &used) {
            return Ok(());
        }
        let mut new = (*rq).clone();
        new.status = Some(ResourceQuotaStatus {
            hard: Some(hard),
            used: Some(used),
        });
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), &ns);
        api.replace_status(
            rq.metadata.name.as_deref().unwrap_or(""),
            &PostParams::default(),
            &new,
        )
        .await?;
        Ok(())
    }

    /// The namespace's usage of one quota resource; `None` when it is not tracked.
    async fn usage(
        &self,
        ns: &str,
        name: &str,
        scopes: &[String],
    ) -> anyhow::Result<Option<Milli>> {
        let count = |n: usize| {
            Some(Milli {
                value: n as i128 * 1000,
                binary: false,
            })
        };
        let pod_scoped = !scopes.is_empty();
        let pods = || -> Vec<Arc<Pod>> {
            self.pods
                .list_namespace(ns)
                .into_iter()
                .filter(|p| !crate::endpointslice::util::is_pod_terminal(p))
                .filter(|p| scopes.iter().all(|s| pod_matches_scope(p, s)))
                .collect()
        };
        if let Some(res) = name
            .strip_prefix("requests.")
            .filter(|r| !r.contains('/') && *r != "storage")
            .or(matches!(name, "cpu" | "memory" | "ephemeral-storage").then_some(name))
        {
            return Ok(Some(sum_pods(&pods(), res, false)));
        }
        if let Some(res) = name.strip_prefix("limits.") {
            return Ok(Some(sum_pods(&pods(), res, true)));
        }
        if matches!(name, "pods" | "count/pods") {
            return Ok(count(pods().len()));
        }
        if pod_scoped {
            // Quotas with pod scopes track pod resources only.
            return Ok(None);
        }
        let services = || self.services.list_namespace(ns);
        let svc_type = |s: &Service| {
            s.spec
                .as_ref()
                .and_then(|s| s.type_.clone())
                .unwrap_or_default()
        };
        Ok(match name {
            "services" | "count/services" => count(services().len()),
            "services.loadbalancers" => count(
                services()
                    .iter()
                    .filter(|s| svc_type(s) == "LoadBalancer")
                    .count(),
            ),
            "services.nodeports" => count(
                services()
                    .iter()
                    .filter(|s| matches!(svc_type(s).as_str(), "NodePort" | "LoadBalancer"))
                    .flat_map(|s| {
                        s.spec
                            .as_ref()
                            .and_then(|s| s.ports.clone())
                            .unwrap_or_default()
                    })
                    .filter(|p| p.node_port.is_some())
                    .count(),
            ),
            "configmaps" | "count/configmaps" => count(self.configmaps.list_namespace(ns).len()),
            "secrets" | "count/secrets" => count(self.secrets.list_namespace(ns).len()),
            "replicationcontrollers" | "count/replicationcontrollers" => {
                count(self.rcs.list_namespace(ns).len())
            }
            "resourcequotas" | "count/resourcequotas" => {
                count(self.quotas.list_namespace(ns).len())
            }
            "persistentvolumeclaims" | "count/persistentvolumeclaims" => {
                count(self.pvcs.list_namespace(ns).len())
            }
            "requests.storage" => Some(sum_pvcs(&self.pvcs.list_namespace(ns), None)),
            other => {
                if let Some((class, what)) = other.split_once(".storageclass.storage.k8s.io/") {
                    let pvcs = self.pvcs.list_namespace(ns);
                    match what {
                        "requests.storage" => Some(sum_pvcs(&pvcs, Some(class))),
                        "persistentvolumeclaims" => {
                            count(pvcs.iter().filter(|p| pvc_class(p) == Some(class)).count())
                        }
                        _ => None,
                    }
                } else if let Some(res) = other.strip_prefix("count/") {
                    self.count_generic(ns, res).await?.and_then(count)
                } else {
                    None
                }
            }
        })
    }

    /// `count/<resource>.<group>` for resources without an informer here: a metadata list.
    async fn count_generic(&self, ns: &str, res: &str) -> anyhow::Result<Option<usize>> {
        let (plural, group) = res.split_once('.').unwrap_or((res, ""));
        let Ok(g) = kube::discovery::group(&self.client, group).await else {
            return Ok(None);
        };
        let Some((ar, _)) = g
            .recommended_resources()
            .into_iter()
            .find(|(ar, _)| ar.plural == plural)
        else {
            return Ok(None);
        };
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(self.client.clone(), ns, &ar);
        let list = api.list_metadata(&ListParams::default()).await?;
        Ok(Some(list.items.len()))
    }
}

fn pvc_class(p: &PersistentVolumeClaim) -> Option<&str> {
    p.spec.as_ref()?.storage_class_name.as_deref().or_else(|| {
        p.metadata
            .annotations
            .as_ref()?
            .get("volume.beta.kubernetes.io/storage-class")
            .map(String::as_str)
    })
}

fn sum_pvcs(pvcs: &[Arc<PersistentVolumeClaim>], class: Option<&str>) -> Milli {
    pvcs.iter()
        .filter(|p| class.is_none() || pvc_class(p) == class)
        .filter_map(|p| {
            p.spec
                .as_ref()?
                .resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")
                .cloned()
        })
        .filter_map(|q| quantity::parse(&q.0))
        .fold(Milli::default(), Milli::plus)
}

/// The pod's request (or limit) of a resource: the larger of the containers' sum and any single
/// init container (upstream `PodRequests`/`PodLimits`), plus overhead.
fn pod_amount(pod: &Pod, res: &str, limits: bool) -> Milli {
    let Some(spec) = pod.spec.as_ref() else {
        return Milli::default();
    };
    let of = |r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| {
        r.and_then(|r| {
            if limits {
                r.limits.as_ref()
            } else {
                r.requests.as_ref()
            }
        })
        .and_then(|m| m.get(res))
        .and_then(|q| quantity::parse(&q.0))
        .unwrap_or_default()
    };
    let sum = spec
        .containers
        .iter()
        .map(|c| of(c.resources.as_ref()))
        .fold(Milli::default(), Milli::plus);
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| of(c.resources.as_ref()))
        .max_by_key(|m| m.value)
        .unwrap_or_default();
    let mut total = if init.value > sum.value { init } else { sum };
    if let Some(o) = spec
        .overhead
        .as_ref()
        .and_then(|o| o.get(res))
        .and_then(|q| quantity::parse(&q.0))
    {
        total = total.plus(o);
    }
    total
}

fn sum_pods(pods: &[Arc<Pod>], res: &str, limits: bool) -> Milli {
    pods.iter()
        .map(|p| pod_amount(p, res, limits))
        .fold(Milli::default(), Milli::plus)
}

fn pod_matches_scope(pod: &Pod, scope: &str) -> bool {
    let spec = pod.spec.as_ref();
    let terminating = spec
        .and_then(|s| s.active_deadline_seconds)
        .is_some_and(|d| d >= 0);
    let best_effort = spec.is_none_or(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .all(|c| {
                c.resources.as_ref().is_none_or(|r| {
                    r.requests.as_ref().is_none_or(|m| m.is_empty())
                        && r.limits.as_ref().is_none_or(|m| m.is_empty())
                })
            })
    });
    match scope {
        "Terminating" => terminating,
        "NotTerminating" => !terminating,
        "BestEffort" => best_effort,
        "NotBestEffort" => !best_effort,
        _ => true,
    }
}
