//! Pod and ownership helpers shared by the job, daemonset and statefulset controllers (mirrors
//! parts of upstream `pkg/api/v1/pod/util.go` and `pkg/controller/controller_utils.go`): pod
//! readiness and activity, controller references, pods from templates, label selectors, the
//! order in which active pods are deleted, create/delete expectations and the fnv32a-based
//! name hashing (`rand.SafeEncodeString`).

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::Resource;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Whether the pod has condition Ready=True (upstream `podutil.IsPodReady`).
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod's Ready condition last turned True (`None` if not ready; a ready pod without a
/// transition time counts as ready since the epoch).
pub fn ready_since(pod: &Pod) -> Option<jiff::Timestamp> {
    let conds = pod.status.as_ref()?.conditions.as_ref()?;
    let c = conds.iter().find(|c| c.type_ == "Ready")?;
    if c.status != "True" {
        return None;
    }
    Some(
        c.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
    )
}

/// Ready for at least `min_ready_seconds` (upstream `podutil.IsPodAvailable`).
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(t) => t + jiff::SignedDuration::from_secs(i64::from(min_ready_seconds)) <= now,
    }
}

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished and not being deleted (upstream `controller.IsPodActive`).
pub fn is_pod_active(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// Being deleted but not finished (upstream `controller.IsPodTerminating`).
pub fn is_pod_terminating(pod: &Pod) -> bool {
    let p = phase(pod);
    p != "Succeeded" && p != "Failed" && pod.metadata.deletion_timestamp.is_some()
}

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `meta` is controlled by the object with this uid.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_ref(meta).is_some_and(|r| r.uid == uid)
}

/// A controller owner reference to `owner` (controller and blockOwnerDeletion set, as upstream
/// `metav1.NewControllerRef`).
pub fn controller_owner_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod from a template (upstream `GetPodFromTemplate`): template labels, annotations,
/// finalizers and spec, `generateName` `<prefix>-` (`prefix` is the owner's name), and the
/// controller reference. Callers set names and extra metadata.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    prefix: &str,
    owner: OwnerReference,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    let mut generate = format!("{prefix}-");
    if generate.len() > 58 {
        // Upstream caps the generated prefix so that the random suffix fits in 63 characters.
        generate.truncate(58);
    }
    Pod {
        metadata: ObjectMeta {
            namespace: Some(namespace.to_string()),
            generate_name: Some(generate),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Whether a (non-nil) selector matches the labels: an empty selector matches everything, an
/// invalid one nothing (upstream `metav1.LabelSelectorAsSelector`).
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    match apiserver_apimachinery::selector::LabelSelector::from_meta(sel) {
        Ok(s) => s.matches(labels.unwrap_or(&empty)),
        Err(_) => false,
    }
}

/// The order in which upstream (`controller.ActivePods`) prefers to delete pods: a smaller key
/// is deleted first (unscheduled before scheduled, pending before unknown before running, not
/// ready before ready, ready for less time first, more restarts first, newer first).
pub fn deletion_cost_key(pod: &Pod) -> impl Ord + use<> {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase_rank = match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    };
    let ready = ready_since(pod);
    let restarts: i32 = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0);
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0);
    (
        scheduled,
        phase_rank,
        ready.is_some(),
        // Ready more recently (a later timestamp) is deleted first.
        std::cmp::Reverse(ready.map(|t| t.as_second()).unwrap_or(0)),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

/// 32-bit FNV-1a.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Upstream `rand.SafeEncodeString`: maps each byte onto an alphabet without vowels (so no
/// words) and without look-alike characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// How long an unmet expectation is trusted before the controller resyncs anyway (upstream
/// `ExpectationsTimeout`).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// Create/delete expectations per controller key (upstream `ControllerExpectations`): after
/// issuing creations or deletions a controller waits until its informer has seen them before
/// counting pods again, so a stale cache never causes duplicate creations.
#[derive(Default)]
pub struct Expectations {
    inner: Mutex<HashMap<String, (i64, i64, Instant)>>,
}

impl Expectations {
    /// Whether the controller may trust its cache for `key`.
    pub fn satisfied(&self, key: &str) -> bool {
        let map = self.inner.lock().expect("expectations");
        match map.get(key) {
            None => true,
            Some((add, del, at)) => (*add <= 0 && *del <= 0) || at.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    /// Records that `adds` creations and `dels` deletions are about to be issued.
    pub fn expect(&self, key: &str, adds: i64, dels: i64) {
        self.inner
            .lock()
            .expect("expectations")
            .insert(key.to_string(), (adds, dels, Instant::now()));
    }

    /// One creation was seen (or will never be, because it failed).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.inner.lock().expect("expectations").get_mut(key) {
            e.0 -= 1;
        }
    }

    /// One deletion was seen (or will never be).
    pub fn deletion_observed(&self, key: &str) {
        if let Some(e) = self.inner.lock().expect("expectations").get_mut(key) {
            e.1 -= 1;
        }
    }

    pub fn forget(&self, key: &str) {
        self.inner.lock().expect("expectations").remove(key);
    }
}

/// Adopts and releases pods for `owner` (upstream `PodControllerRefManager.ClaimPods`): pods it
/// controls are kept while the selector matches them and released otherwise; orphans that match
/// (and pass `filter`) are adopted, after a fresh read confirms the owner still exists and is
/// not being deleted. Returns the pods the owner controls afterwards.
pub async fn claim_pods<K>(
    client: &kube::Client,
    owner: &K,
    selector: &LabelSelector,
    pods: Vec<std::sync::Arc<Pod>>,
    filter: impl Fn(&Pod) -> bool,
) -> anyhow::Result<Vec<std::sync::Arc<Pod>>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let uid = owner.meta().uid.clone().unwrap_or_default();
    let owner_deleting = owner.meta().deletion_timestamp.is_some();
    let mut out = Vec::new();
    let mut owner_checked: Option<bool> = None;
    for p in pods {
        let matches = selector_matches(selector, p.metadata.labels.as_ref());
        match controller_ref(&p.metadata) {
            Some(r) if r.uid == uid => {
                if matches || owner_deleting {
                    out.push(p);
                } else {
                    let refs: Vec<&OwnerReference> = p
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|r| r.uid != uid)
                        .collect();
                    patch_owner_refs(client, &p, serde_json::to_value(refs)?).await?;
                }
            }
            Some(_) => {}
            None => {
                if !matches
                    || !filter(&p)
                    || owner_deleting
                    || p.metadata.deletion_timestamp.is_some()
                {
                    continue;
                }
                if owner_checked.is_none() {
                    let ns = owner.meta().namespace.clone().unwrap_or_default();
                    let api: kube::Api<K> = kube::Api::namespaced(client.clone(), &ns);
                    let fresh = api
                        .get_opt(owner.meta().name.as_deref().unwrap_or(""))
                        .await?;
                    owner_checked = Some(fresh.is_some_and(|f| {
                        f.meta().uid.as_deref() == Some(uid.as_str())
                            && f.meta().deletion_timestamp.is_none()
                    }));
                }
                if owner_checked != Some(true) {
                    continue;
                }
                let mut refs: Vec<OwnerReference> =
                    p.metadata.owner_references.clone().unwrap_or_default();
                refs.push(controller_owner_ref(owner));
                if patch_owner_refs(client, &p, serde_json::to_value(refs)?).await? {
                    out.push(p);
                }
            }
        }
    }
    Ok(out)
}

/// Sets a pod's ownerReferences, guarded by its resourceVersion; `false` if the pod is gone or
/// changed meanwhile (the next sync sees the new state).
async fn patch_owner_refs(
    client: &kube::Client,
    pod: &Pod,
    refs: serde_json::Value,
) -> anyhow::Result<bool> {
    let api: kube::Api<Pod> = kube::Api::namespaced(
        client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or(""),
    );
    let patch = serde_json::json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": pod.metadata.resource_version,
    }});
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match api
        .patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether a kube error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether a kube error is a 409 AlreadyExists (not a conflict on update).
pub fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists")
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(phase: &str, ready_at: Option<i64>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|s| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(jiff::Timestamp::from_second(s).unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn readiness_and_availability() {
        let now = jiff::Timestamp::from_second(1000).unwrap();
        assert!(!is_pod_ready(&pod("Running", None)));
        assert!(is_pod_ready(&pod("Running", Some(990))));
        assert!(is_pod_available(&pod("Running", Some(990)), 10, now));
        assert!(!is_pod_available(&pod("Running", Some(995)), 10, now));
    }

    #[test]
    fn deletion_order_prefers_pending_and_unready() {
        let mut pods = [
            pod("Running", Some(10)),
            pod("Pending", None),
            pod("Running", None),
        ];
        pods.sort_by_key(deletion_cost_key);
        assert_eq!(phase(&pods[0]), "Pending");
        assert!(!is_pod_ready(&pods[1]));
        assert!(is_pod_ready(&pods[2]));
    }

    #[test]
    fn hashing_and_encoding() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        let e = safe_encode("1234567890");
        assert_eq!(e.len(), 10);
        assert!(e.chars().all(|c| !"aeiou013".contains(c)));
    }

    #[test]
    fn expectations_gate_until_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("a"));
        e.expect("a", 2, 0);
        assert!(!e.satisfied("a"));
        e.creation_observed("a");
        assert!(!e.satisfied("a"));
        e.creation_observed("a");
        assert!(e.satisfied("a"));
    }
}
