//! The in-tree plugins and their registry (mirrors upstream
//! `pkg/scheduler/framework/plugins/registry.go` and the default profile of
//! `apis/config/v1/default_plugins.go`). One file per plugin.

pub mod balanced_allocation;
pub mod default_binder;
pub mod default_preemption;
pub mod helper;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;
#[cfg(test)]
pub mod testing;

use crate::framework::{Plugin, PodInfo};
use apiserver_apimachinery::selector::{LabelSelector, Op, Requirement};
use component_base::InformerFactory;
use component_base::events::Recorder;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{ReplicationController, Service};
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// What plugins may use besides the cycle's snapshot.
#[derive(Clone, Default)]
pub struct Handle {
    pub client: Option<kube::Client>,
    pub informers: Option<Arc<InformerFactory>>,
    pub recorder: Option<Recorder>,
}

/// Builds a plugin from its `pluginConfig` args (None = defaults).
pub type Factory = fn(Option<&serde_json::Value>, &Handle) -> anyhow::Result<Arc<dyn Plugin>>;

fn args<T: DeserializeOwned + Default>(
    name: &str,
    v: Option<&serde_json::Value>,
) -> anyhow::Result<T> {
    match v {
        None => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("decoding args for plugin {name}: {e}")),
    }
}

/// Every plugin this scheduler knows, by name.
pub fn registry() -> Vec<(&'static str, Factory)> {
    vec![
        (node_name::NAME, |_, _| Ok(Arc::new(node_name::NodeName))),
        (node_unschedulable::NAME, |_, _| {
            Ok(Arc::new(node_unschedulable::NodeUnschedulable))
        }),
        (taint_toleration::NAME, |_, _| {
            Ok(Arc::new(taint_toleration::TaintToleration))
        }),
        (node_affinity::NAME, |a, _| {
            Ok(Arc::new(node_affinity::NodeAffinity::new(args(
                node_affinity::NAME,
                a,
            )?)))
        }),
        (node_ports::NAME, |_, _| Ok(Arc::new(node_ports::NodePorts))),
        (node_resources_fit::NAME, |a, _| {
            Ok(Arc::new(node_resources_fit::Fit::new(args(
                node_resources_fit::NAME,
                a,
            )?)?))
        }),
        (pod_topology_spread::NAME, |a, h| {
            Ok(Arc::new(pod_topology_spread::PodTopologySpread::new(
                args(pod_topology_spread::NAME, a)?,
                h.informers.as_ref().map(default_selector),
            )?))
        }),
        (inter_pod_affinity::NAME, |a, _| {
            Ok(Arc::new(inter_pod_affinity::InterPodAffinity::new(args(
                inter_pod_affinity::NAME,
                a,
            )?)?))
        }),
        (default_preemption::NAME, |a, h| {
            Ok(Arc::new(default_preemption::DefaultPreemption {
                args: args(default_preemption::NAME, a)?,
                client: h.client.clone(),
                pdbs: h.informers.as_ref().map(|f| f.informer()),
                recorder: h.recorder.clone(),
            }))
        }),
        (balanced_allocation::NAME, |a, _| {
            Ok(Arc::new(balanced_allocation::BalancedAllocation::new(
                args(balanced_allocation::NAME, a)?,
            )))
        }),
        (image_locality::NAME, |_, _| {
            Ok(Arc::new(image_locality::ImageLocality))
        }),
        (default_binder::NAME, |_, h| {
            Ok(Arc::new(default_binder::DefaultBinder {
                client: h.client.clone(),
            }))
        }),
    ]
}

/// The default profile's multi-point plugins in upstream's order, with score weights.
pub fn default_plugins() -> Vec<(&'static str, i64)> {
    vec![
        (node_unschedulable::NAME, 1),
        (node_name::NAME, 1),
        (taint_toleration::NAME, 3),
        (node_affinity::NAME, 2),
        (node_ports::NAME, 1),
        (node_resources_fit::NAME, 1),
        (pod_topology_spread::NAME, 2),
        (inter_pod_affinity::NAME, 2),
        (default_preemption::NAME, 1),
        (balanced_allocation::NAME, 1),
        (image_locality::NAME, 1),
        (default_binder::NAME, 1),
    ]
}

/// Upstream `helper.DefaultSelector`: the selectors of the services selecting the pod and of
/// its controlling ReplicationController, ReplicaSet or StatefulSet, merged.
fn default_selector(f: &Arc<InformerFactory>) -> pod_topology_spread::DefaultSelectorFn {
    let services = f.informer::<Service>();
    let rcs = f.informer::<ReplicationController>();
    let rss = f.informer::<ReplicaSet>();
    let sss = f.informer::<StatefulSet>();
    Arc::new(move |pod: &PodInfo| {
        let labels = pod.labels();
        let mut sel = LabelSelector::default();
        let add_map = |sel: &mut LabelSelector, m: &std::collections::BTreeMap<String, String>| {
            for (k, v) in m {
                if !sel.requirements.iter().any(|r| &r.key == k) {
                    sel.requirements.push(Requirement {
                        key: k.clone(),
                        op: Op::Equals,
                        values: vec![v.clone()],
                    });
                }
            }
        };
        for svc in services.list_namespace(&pod.namespace) {
            if let Some(s) = svc.spec.as_ref().and_then(|s| s.selector.as_ref())
                && !s.is_empty()
                && s.iter().all(|(k, v)| labels.get(k) == Some(v))
            {
                add_map(&mut sel, s);
            }
        }
        let owner = pod
            .pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        if let Some(o) = owner {
            let ns = Some(pod.namespace.as_str());
            match (o.api_version.as_str(), o.kind.as_str()) {
                ("v1", "ReplicationController") => {
                    if let Some(s) = rcs
                        .get(ns, &o.name)
                        .and_then(|rc| rc.spec.as_ref().and_then(|s| s.selector.clone()))
                    {
                        add_map(&mut sel, &s);
                    }
                }
                ("apps/v1", "ReplicaSet") => {
                    if let Some(rs) = rss.get(ns, &o.name)
                        && let Ok(s) = LabelSelector::from_meta(&rs.spec.selector)
                    {
                        sel.requirements.extend(s.requirements);
                    }
                }
                ("apps/v1", "StatefulSet") => {
                    if let Some(ss) = sss.get(ns, &o.name)
                        && let Ok(s) = LabelSelector::from_meta(&ss.spec.selector)
                    {
                        sel.requirements.extend(s.requirements);
                    }
                }
                _ => {}
            }
        }
        Some(sel)
    })
}
