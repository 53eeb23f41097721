//! Pod strategy (mirrors pkg/registry/core/pod/strategy.go): status set on create, graceful
//! deletion, selectable fields; the pod admission plugins (ServiceAccount, Priority,
//! DefaultTolerationSeconds).

use crate::serviceaccount::admission::ServiceAccountAdmission;
use crate::store::GenericStore;
use crate::strategy::{GracefulDelete, Strategy};
use apiserver_apimachinery::{ApiError, FieldError};
use apiserver_apis::ApiType;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount, Toleration};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

pub struct PodStrategy {
    /// PriorityClasses, for the Priority admission plugin.
    pub priority_classes: Arc<GenericStore<PriorityClass>>,
    /// The ServiceAccount admission plugin, unless disabled; attached once the service
    /// account store exists.
    service_accounts: OnceLock<ServiceAccountAdmission>,
    service_account_admission: bool,
}

/// Upstream's `--default-not-ready-toleration-seconds` / `--default-unreachable-toleration-seconds`.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// DefaultTolerationSeconds admission (plugin/pkg/admission/defaulttolerationseconds): pods
/// tolerate the not-ready and unreachable NoExecute taints for 5 minutes unless they say
/// otherwise.
fn default_toleration_seconds(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(Default::default);
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = tolerations.iter().any(|t| {
            let effect_ok = t
                .effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == "NoExecute");
            let key_ok = match t.key.as_deref() {
                None | Some("") => t.operator.as_deref() == Some("Exists"),
                Some(k) => k == key,
            };
            effect_ok && key_ok
        });
        if !tolerated {
            tolerations.push(Toleration {
                key: Some(key.to_string()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                value: None,
            });
        }
    }
}

impl PodStrategy {
    pub fn new(
        priority_classes: Arc<GenericStore<PriorityClass>>,
        service_account_admission: bool,
    ) -> Self {
        PodStrategy {
            priority_classes,
            service_accounts: OnceLock::new(),
            service_account_admission,
        }
    }

    /// Enables ServiceAccount admission (unless disabled) over the service account store.
    pub fn attach_service_accounts(&self, store: Arc<GenericStore<ServiceAccount>>) {
        if self.service_account_admission {
            let _ = self.service_accounts.set(ServiceAccountAdmission {
                service_accounts: store,
            });
        }
    }

    fn priority_class(&self, name: &str) -> Option<PriorityClass> {
        let cached = self
            .priority_classes
            .cache
            .get(&self.priority_classes.key(None, name))?;
        serde_json::from_slice(&cached.json).ok()
    }

    fn global_default(&self) -> Option<PriorityClass> {
        let prefix = self.priority_classes.resource_prefix();
        let filter = apiserver_storage::cacher::Filter {
            key_prefix: prefix,
            ..Default::default()
        };
        self.priority_classes
            .cache
            .list(&filter, None, 0)
            .items
            .into_iter()
            .filter_map(|o| serde_json::from_slice::<PriorityClass>(&o.json).ok())
            .filter(|pc| pc.global_default == Some(true))
            .min_by_key(|pc| pc.value)
    }

    /// Priority admission (plugin/pkg/admission/priority): resolves `priorityClassName` into
    /// `priority` and `preemptionPolicy`, using the global default class when none is named.
    fn admit_priority(&self, pod: &mut Pod) -> Result<(), ApiError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.get_or_insert_with(Default::default);
        let requested = spec.priority_class_name.clone().filter(|n| !n.is_empty());
        let class = match &requested {
            Some(n) => Some(self.priority_class(n).ok_or_else(|| {
                ApiError::forbidden(
                    "",
                    "pods",
                    &name,
                    &format!("no PriorityClass with name {n} was found"),
                )
            })?),
            None => self.global_default(),
        };
        let (value, policy) = match &class {
            Some(pc) => (
                pc.value.unwrap_or(0),
                pc.preemption_policy
                    .clone()
                    .unwrap_or_else(|| "PreemptLowerPriority".into()),
            ),
            None => (0, "PreemptLowerPriority".to_string()),
        };
        if let Some(p) = spec.priority {
            if p != value {
                return Err(ApiError::forbidden(
                    "",
                    "pods",
                    &name,
                    &format!(
                        "the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
                    ),
                ));
            }
        }
        if requested.is_none() {
            if let Some(pc) = &class {
                spec.priority_class_name = pc.metadata.name.clone();
            }
        }
        spec.priority = Some(value);
        spec.preemption_policy = Some(policy);
        Ok(())
    }
}

impl Strategy<Pod> for PodStrategy {
    fn has_status(&self) -> bool {
        true
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, pod: &mut Pod) {
        apiserver_apis::strategy::pod_prepare_for_create(pod);
    }
    fn admit_create_async<'a>(
        &'a self,
        namespace: &'a str,
        pod: &'a mut Pod,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            match self.service_accounts.get() {
                Some(sa) => sa.admit(namespace, pod).await,
                None => Ok(()),
            }
        })
    }
    fn admit_create(&self, pod: &mut Pod) -> Result<(), ApiError> {
        self.admit_priority(pod)?;
        default_toleration_seconds(pod);
        Ok(())
    }
    fn validate(&self, pod: &Pod) -> Vec<FieldError> {
        pod.validate()
    }
    fn validate_update(&self, new: &Pod, old: &Pod) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }
    fn fields(&self, pod: &Pod, out: &mut BTreeMap<String, String>) {
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        out.insert(
            "spec.nodeName".into(),
            spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        );
        out.insert(
            "spec.restartPolicy".into(),
            spec.and_then(|s| s.restart_policy.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.schedulerName".into(),
            spec.and_then(|s| s.scheduler_name.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.serviceAccountName".into(),
            spec.and_then(|s| s.service_account_name.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.hostNetwork".into(),
            spec.and_then(|s| s.host_network)
                .unwrap_or(false)
                .to_string(),
        );
        out.insert(
            "status.phase".into(),
            status.and_then(|s| s.phase.clone()).unwrap_or_default(),
        );
        out.insert(
            "status.podIP".into(),
            status.and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
        );
        out.insert(
            "status.nominatedNodeName".into(),
            status
                .and_then(|s| s.nominated_node_name.clone())
                .unwrap_or_default(),
        );
    }
    fn graceful_delete(&self, pod: &Pod, requested: Option<i64>) -> GracefulDelete {
        let spec = pod.spec.as_ref();
        let grace = requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(30);
        let unscheduled = spec
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty);
        let finished = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        // A negative grace period means "as soon as possible": one second, as upstream.
        let grace = if grace < 0 { 1 } else { grace };
        if grace == 0 || unscheduled || finished {
            GracefulDelete::Now
        } else {
            GracefulDelete::After(grace)
        }
    }
    fn return_deleted_object(&self) -> bool {
        true
    }
}
