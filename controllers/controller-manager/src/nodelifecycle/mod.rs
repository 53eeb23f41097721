//! node-lifecycle-controller (mirrors upstream `pkg/controller/nodelifecycle/node_lifecycle_controller.go`):
//! every `--node-monitor-period` it checks that each node's kubelet still renews its Lease in
//! `kube-node-lease` or posts status; after `--node-monitor-grace-period` of silence the node's
//! conditions go Unknown, its pods NotReady, and it gets the `unreachable` taints (`not-ready`
//! for a NotReady node). NoSchedule taints follow the node's conditions on every node change.

pub mod taint_eviction;
pub mod taints;

use crate::ControllerContext;
use crate::endpoints::support::{is_not_found, now, on_change, shut_down_on_cancel};
use component_base::informer::{Change, Informer};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Api;
use kube::api::PostParams;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use taints::{NOT_READY, UNREACHABLE};

struct Health {
    probe: jiff::Timestamp,
    ready: Option<NodeCondition>,
    lease_renew: Option<MicroTime>,
}

struct Controller {
    client: kube::Client,
    nodes: Arc<Informer<Node>>,
    leases: Arc<Informer<Lease>>,
    pods: Arc<Informer<Pod>>,
    health: Mutex<HashMap<String, Health>>,
    grace: Duration,
    startup_grace: Duration,
    period: Duration,
    queue: Arc<WorkQueue<String>>,
    recorder: component_base::events::Recorder,
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        nodes: ctx.informers.informer(),
        leases: ctx.informers.informer(),
        pods: ctx.informers.informer(),
        health: Mutex::default(),
        grace: ctx.config.node_monitor_grace_period,
        startup_grace: ctx.config.node_startup_grace_period,
        period: ctx.config.node_monitor_period,
        queue: WorkQueue::new("node_lifecycle_controller"),
        recorder: ctx.recorder("node-controller"),
    });
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        let synced = tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = async {
                c.nodes.wait_synced().await;
                c.leases.wait_synced().await;
                c.pods.wait_synced().await;
            } => true,
        };
        if !synced {
            return Ok(());
        }
        let q = c.queue.clone();
        on_change(&c.nodes, &shutdown, move |ch: Change<Node>| {
            if !matches!(ch, Change::Deleted(_)) {
                q.add(ch.object().metadata.name.clone().unwrap_or_default());
            }
        });
        shut_down_on_cancel(&c.queue, &shutdown);
        let cc = c.clone();
        let workers = tokio::spawn(run_workers(c.queue.clone(), 4, move |name: String| {
            let c = cc.clone();
            async move { c.no_schedule_taint_pass(&name).await }
        }));
        let mut tick = tokio::time::interval(c.period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => c.monitor_node_health().await,
            }
        }
        let _ = workers.await;
        Ok(())
    })
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

impl Controller {
    async fn monitor_node_health(&self) {
        let known: Vec<String> = self
            .nodes
            .list()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        self.health
            .lock()
            .expect("node health")
            .retain(|name, _| known.contains(name));
        for node in self.nodes.list() {
            let name = node.metadata.name.clone().unwrap_or_default();
            if let Err(e) = self.monitor_node(&node).await {
                tracing::warn!(node = %name, error = %format!("{e:#}"), "updating node health failed");
            }
        }
    }

    async fn monitor_node(&self, node: &Node) -> anyhow::Result<()> {
        let mut node = node.clone();
        let (observed, current) = self.try_update_node_health(&mut node).await?;
        let Some(current) = current else {
            return Ok(());
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        // Taints follow the Ready condition as observed before this pass (upstream behaviour).
        match observed.status.as_str() {
            "False" => self.swap_no_execute(&name, NOT_READY, UNREACHABLE).await?,
            "Unknown" => self.swap_no_execute(&name, UNREACHABLE, NOT_READY).await?,
            "True" => {
                taints::update_taints(&self.client, &name, |t| {
                    t.retain(|t| {
                        !(t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE))
                    });
                })
                .await?
            }
            _ => {}
        }
        if current.status != "True" && observed.status == "True" {
            self.recorder.normal(
                &node,
                "NodeNotReady",
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            );
            self.mark_pods_not_ready(&name).await?;
        }
        Ok(())
    }

    async fn swap_no_execute(&self, node: &str, add: &str, remove: &str) -> anyhow::Result<()> {
        taints::update_taints(&self.client, node, |t| {
            t.retain(|t| !(t.effect == "NoExecute" && t.key == remove));
            if !t.iter().any(|t| t.effect == "NoExecute" && t.key == add) {
                t.push(Taint {
                    key: add.into(),
                    effect: "NoExecute".into(),
                    time_added: Some(now()),
                    value: None,
                });
            }
        })
        .await
    }

    /// Upstream `tryUpdateNodeHealth`: returns the Ready condition as observed and as it is after
    /// this pass (conditions turn Unknown once the node's kubelet has been silent too long).
    async fn try_update_node_health(
        &self,
        node: &mut Node,
    ) -> anyhow::Result<(NodeCondition, Option<NodeCondition>)> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let now_ts = jiff::Timestamp::now();
        let created = node
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(now_ts, |t| t.0);
        let current = condition(node, "Ready").cloned();
        let (observed, grace) = match &current {
            None => (
                NodeCondition {
                    type_: "Ready".into(),
                    status: "Unknown".into(),
                    ..Default::default()
                },
                self.startup_grace,
            ),
            Some(c) => (c.clone(), self.grace),
        };
        let lease = self.leases.get(Some("kube-node-lease"), &name);
        let probe = {
            let mut map = self.health.lock().expect("node health");
            let entry = map.entry(name.clone()).or_insert_with(|| Health {
                probe: if current.is_none() { created } else { now_ts },
                ready: current.clone(),
                lease_renew: None,
            });
            let heartbeat =
                |c: &Option<NodeCondition>| c.as_ref().and_then(|c| c.last_heartbeat_time.clone());
            let changed = match (&entry.ready, &current) {
                (None, Some(_)) | (Some(_), None) => true,
                (Some(_), Some(_)) => heartbeat(&entry.ready) != heartbeat(&current),
                (None, None) => false,
            };
            if changed {
                entry.probe = now_ts;
            }
            entry.ready = current.clone();
            let renew = lease
                .as_ref()
                .and_then(|l| l.spec.as_ref())
                .and_then(|s| s.renew_time.clone());
            if let Some(r) = renew
                && entry.lease_renew.as_ref().is_none_or(|saved| saved.0 < r.0)
            {
                entry.lease_renew = Some(r);
                entry.probe = now_ts;
            }
            entry.probe
        };
        let silent = now_ts.duration_since(probe).unsigned_abs();
        if silent <= grace {
            return Ok((observed, current));
        }
        let before = node.status.clone();
        let st = node.status.get_or_insert_with(Default::default);
        let conds = st.conditions.get_or_insert_with(Vec::new);
        let stamp = now();
        for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            match conds.iter_mut().find(|c| c.type_ == t) {
                None => conds.push(NodeCondition {
                    type_: t.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(stamp.clone()),
                }),
                Some(c) if c.status != "Unknown" => {
                    c.status = "Unknown".into();
                    c.reason = Some("NodeStatusUnknown".into());
                    c.message = Some("Kubelet stopped posting node status.".into());
                    c.last_transition_time = Some(stamp.clone());
                }
                Some(_) => {}
            }
        }
        let current = condition(node, "Ready").cloned();
        if node.status != before {
            let api: Api<Node> = Api::all(self.client.clone());
            let updated = api
                .replace_status(&name, &PostParams::default(), node)
                .await?;
            // Our own write is not a sign of life.
            if let Some(h) = self.health.lock().expect("node health").get_mut(&name) {
                h.ready = condition(&updated, "Ready").cloned();
            }
            *node = updated;
        }
        Ok((observed, current))
    }

    /// Upstream `MarkPodsNotReady`: the pods' Ready condition goes False.
    async fn mark_pods_not_ready(&self, node: &str) -> anyhow::Result<()> {
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list()
            .into_iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect();
        for pod in pods {
            let mut p = (*pod).clone();
            let Some(conds) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) else {
                continue;
            };
            let Some(c) = conds.iter_mut().find(|c| c.type_ == "Ready") else {
                continue;
            };
            if c.status == "False" {
                continue;
            }
            c.status = "False".into();
            c.last_transition_time = Some(now());
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                p.metadata.namespace.as_deref().unwrap_or(""),
            );
            let name = p.metadata.name.clone().unwrap_or_default();
            match api.replace_status(&name, &PostParams::default(), &p).await {
                Err(e) if !is_not_found(&e) => return Err(e.into()),
                _ => {}
            }
            self.recorder.normal(
                pod.as_ref(),
                "NodeNotReady",
                "NodeNotReady",
                "Node is not ready".into(),
            );
        }
        Ok(())
    }

    /// Upstream `doNoScheduleTaintingPass`: NoSchedule taints mirroring the node's conditions.
    async fn no_schedule_taint_pass(&self, name: &str) -> anyhow::Result<()> {
        let Some(node) = self.nodes.get(None, name) else {
            return Ok(());
        };
        let want = taints::no_schedule_taints_for(&node);
        let managed = taints::NO_SCHEDULE_KEYS;
        let have: Vec<&Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.effect == "NoSchedule" && managed.contains(&t.key.as_str()))
            .collect();
        let same =
            have.len() == want.len() && want.iter().all(|k| have.iter().any(|t| t.key == *k));
        if same {
            return Ok(());
        }
        taints::update_taints(&self.client, name, |t| {
            t.retain(|t| !(t.effect == "NoSchedule" && managed.contains(&t.key.as_str())));
            for k in &want {
                t.push(Taint {
                    key: (*k).into(),
                    effect: "NoSchedule".into(),
                    time_added: None,
                    value: None,
                });
            }
        })
        .await
    }
}
