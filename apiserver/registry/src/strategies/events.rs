//! Event strategy (mirrors pkg/registry/core/event/strategy.go): stored with a TTL
//! (`--event-ttl`, 1h), selectable by involved object, reason, source and type.

use crate::strategy::Strategy;
use k8s_openapi::api::core::v1::Event;
use std::collections::BTreeMap;

pub struct EventStrategy {
    pub ttl_seconds: i64,
}

impl Strategy<Event> for EventStrategy {
    fn allow_unconditional_update(&self) -> bool {
        true
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }
    fn fields(&self, e: &Event, out: &mut BTreeMap<String, String>) {
        let io = &e.involved_object;
        out.insert(
            "involvedObject.kind".into(),
            io.kind.clone().unwrap_or_default(),
        );
        out.insert(
            "involvedObject.namespace".into(),
            io.namespace.clone().unwrap_or_default(),
        );
        out.insert(
            "involvedObject.name".into(),
            io.name.clone().unwrap_or_default(),
        );
        out.insert(
            "involvedObject.uid".into(),
            io.uid.clone().unwrap_or_default(),
        );
        out.insert(
            "involvedObject.apiVersion".into(),
            io.api_version.clone().unwrap_or_default(),
        );
        out.insert(
            "involvedObject.resourceVersion".into(),
            io.resource_version.clone().unwrap_or_default(),
        );
        out.insert(
            "involvedObject.fieldPath".into(),
            io.field_path.clone().unwrap_or_default(),
        );
        out.insert("reason".into(), e.reason.clone().unwrap_or_default());
        out.insert(
            "reportingComponent".into(),
            e.reporting_component.clone().unwrap_or_default(),
        );
        // `source` is the source component, or the reporting controller when that is unset.
        let source = e
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .filter(|s| !s.is_empty());
        out.insert(
            "source".into(),
            source
                .or_else(|| e.reporting_component.clone())
                .unwrap_or_default(),
        );
        out.insert("type".into(), e.type_.clone().unwrap_or_default());
    }
    fn ttl_seconds(&self) -> Option<i64> {
        Some(self.ttl_seconds)
    }
}
