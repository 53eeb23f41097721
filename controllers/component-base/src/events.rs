//! Event recording for controllers (client-go `tools/record`), on top of kube-runtime's
//! events.k8s.io/v1 recorder (which also counts repeats as an event series). Publishing is
//! fire-and-forget: a controller never waits on, or fails because of, an event.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder as KubeRecorder, Reporter};
use kube::{Client, Resource};

#[derive(Clone)]
pub struct Recorder {
    inner: KubeRecorder,
}

impl Recorder {
    /// `component` is the reporting controller (`deployment-controller`, `default-scheduler`...).
    pub fn new(client: Client, component: &str) -> Self {
        let reporter = Reporter {
            controller: component.to_string(),
            instance: Some(format!(
                "{component}-{}",
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default()
            )),
        };
        Recorder {
            inner: KubeRecorder::new(client, reporter),
        }
    }

    pub fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(obj.object_ref(&()), EventType::Normal, reason, action, note);
    }

    pub fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        action: &str,
        note: String,
    ) {
        self.publish(
            obj.object_ref(&()),
            EventType::Warning,
            reason,
            action,
            note,
        );
    }

    pub fn publish(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let rec = self.inner.clone();
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action: action.to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(e) = rec.publish(&ev, &regarding).await {
                tracing::debug!(error = %e, reason = %ev.reason, "event not recorded");
            }
        });
    }
}
