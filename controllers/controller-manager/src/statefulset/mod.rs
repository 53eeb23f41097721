//! The StatefulSet controller (mirrors upstream `pkg/controller/statefulset/stateful_set.go` and
//! `stateful_set_utils.go`): wiring, pod identity (`<set>-<ordinal>`, hostname/subdomain, the
//! pod-name/pod-index/revision labels, claims `<template>-<set>-<ordinal>`), revisions and status.
//! The ordered create/delete/update algorithm is in `control.rs`.

mod control;

use crate::ControllerContext;
use crate::history::{self, CONTROLLER_REVISION_HASH};
use crate::podutil::{controller_ref, is_pod_available, is_pod_ready, phase};
use component_base::events::Recorder;
use component_base::informer::{Informer, key_of};
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use std::sync::Arc;

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

pub(crate) struct StatefulSetController {
    client: kube::Client,
    sets: Arc<Informer<StatefulSet>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    claims: Arc<Informer<PersistentVolumeClaim>>,
    queue: Arc<WorkQueue<String>>,
    recorder: Recorder,
}

/// `statefulset-controller`.
pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let c = Arc::new(StatefulSetController {
        client: ctx.client.clone(),
        sets: ctx.informers.informer::<StatefulSet>(),
        pods: ctx.informers.informer::<Pod>(),
        revisions: ctx.informers.informer::<ControllerRevision>(),
        claims: ctx.informers.informer::<PersistentVolumeClaim>(),
        queue: WorkQueue::new("statefulset"),
        recorder: ctx.recorder("statefulset-controller"),
    });
    let workers = ctx.config.concurrent_statefulset_syncs;
    let informers = ctx.informers.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        if !informers.wait_for_cache_sync(&shutdown).await {
            return Ok(());
        }
        let mut sets = c.sets.subscribe();
        let mut pods = c.pods.subscribe();
        let h = c.clone();
        let handlers = tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(ch) = sets.recv() => h.queue.add(key_of(ch.object().as_ref())),
                    Some(ch) = pods.recv() => {
                        let p = ch.object();
                        if let Some(r) = controller_ref(&p.metadata).filter(|r| r.kind == "StatefulSet") {
                            h.queue.add(format!("{}/{}", p.metadata.namespace.as_deref().unwrap_or(""), r.name));
                        }
                    }
                    else => break,
                }
            }
        });
        let q = c.queue.clone();
        let sync = {
            let c = c.clone();
            move |key: String| {
                let c = c.clone();
                async move { control::sync(&c, &key).await }
            }
        };
        tokio::select! {
            _ = run_workers(q.clone(), workers, sync) => {}
            _ = shutdown.cancelled() => {}
        }
        q.shut_down();
        handlers.abort();
        Ok(())
    })
}

/// The ordinal of a pod named `<set>-<ordinal>`.
pub fn ordinal_of(set: &str, pod_name: &str) -> Option<i32> {
    let rest = pod_name.strip_prefix(set)?.strip_prefix('-')?;
    if rest.is_empty()
        || !rest.bytes().all(|b| b.is_ascii_digit())
        || (rest.len() > 1 && rest.starts_with('0'))
    {
        return None;
    }
    rest.parse().ok()
}

/// The claim name for a volumeClaimTemplate and ordinal: `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

pub fn pod_revision(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH)
        .map(String::as_str)
}

/// The pod template stored in a revision.
pub fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = rev.data.0.get("spec")?.get("template")?.clone();
    t.as_object_mut()?.remove("$patch");
    serde_json::from_value(t).ok()
}

/// A pod for `ordinal` from the template of `rev` (upstream `newVersionedStatefulSetPod`).
pub fn new_pod(set: &StatefulSet, rev: &ControllerRevision, ordinal: i32) -> Pod {
    let name = set.metadata.name.clone().unwrap_or_default();
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let template = template_of(rev).unwrap_or_else(|| set.spec.template.clone());
    let mut pod = crate::podutil::pod_from_template(
        &template,
        &ns,
        &name,
        crate::podutil::controller_owner_ref(set),
    );
    let pod_name = format!("{name}-{ordinal}");
    pod.metadata.generate_name = None;
    pod.metadata.name = Some(pod_name.clone());
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), pod_name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(
        CONTROLLER_REVISION_HASH.into(),
        rev.metadata.name.clone().unwrap_or_default(),
    );
    let spec = pod.spec.get_or_insert_with(Default::default);
    spec.hostname = Some(pod_name);
    if let Some(svc) = set.spec.service_name.as_ref().filter(|s| !s.is_empty()) {
        spec.subdomain = Some(svc.clone());
    }
    for t in set.spec.volume_claim_templates.iter().flatten() {
        let tname = t.metadata.name.clone().unwrap_or_default();
        let vol = Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, &name, ordinal),
                read_only: None,
            }),
            ..Default::default()
        };
        let vols = spec.volumes.get_or_insert_with(Vec::new);
        vols.retain(|v| v.name != tname);
        vols.push(vol);
    }
    pod
}

pub fn is_running_and_ready(p: &Pod) -> bool {
    phase(p) == "Running" && is_pod_ready(p)
}

pub fn is_running_and_available(p: &Pod, min_ready: i32) -> bool {
    phase(p) == "Running" && is_pod_available(p, min_ready, jiff::Timestamp::now())
}

pub fn is_terminal(p: &Pod) -> bool {
    matches!(phase(p), "Failed" | "Succeeded")
}

/// The revision name used for `controller-revision-hash` on stateful pods (upstream labels
/// stateful pods with the revision name, not only the hash).
pub fn revision_label(rev: &ControllerRevision) -> String {
    rev.metadata
        .name
        .clone()
        .unwrap_or_else(|| history::hash_of(rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-01"), None);
        assert_eq!(ordinal_of("web", "webx-1"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(claim_name("www", "web", 2), "www-web-2");
    }

    #[test]
    fn pods_carry_identity_and_claims() {
        let set: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                     "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {}}]},
        }))
        .unwrap();
        let rev = history::new_revision(
            "web",
            "ns",
            crate::podutil::controller_owner_ref(&set),
            None,
            history::template_patch(&set.spec.template),
            1,
            None,
        );
        let p = new_pod(&set, &rev, 3);
        assert_eq!(p.metadata.name.as_deref(), Some("web-3"));
        let l = p.metadata.labels.as_ref().unwrap();
        assert_eq!(l[POD_NAME_LABEL], "web-3");
        assert_eq!(l[POD_INDEX_LABEL], "3");
        assert_eq!(l["app"], "web");
        let s = p.spec.unwrap();
        assert_eq!(
            (s.hostname.as_deref(), s.subdomain.as_deref()),
            (Some("web-3"), Some("nginx"))
        );
        let v = &s.volumes.unwrap()[0];
        assert_eq!(
            v.persistent_volume_claim.as_ref().unwrap().claim_name,
            "www-web-3"
        );
    }
}
