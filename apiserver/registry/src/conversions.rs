//! Conversions between served versions of one stored resource (facts from upstream
//! pkg/apis/events/v1/conversion.go and pkg/apis/autoscaling/v1/conversion.go).

use k8s_openapi::api::autoscaling::{v1 as as1, v2 as as2};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::events::v1 as ev;

/// core/v1 Event (storage) -> events.k8s.io/v1 Event.
pub fn event_to_events_v1(e: core::Event) -> ev::Event {
    ev::Event {
        metadata: e.metadata,
        action: e.action,
        deprecated_count: e.count,
        deprecated_first_timestamp: e.first_timestamp,
        deprecated_last_timestamp: e.last_timestamp,
        deprecated_source: e.source,
        event_time: e.event_time,
        note: e.message,
        reason: e.reason,
        regarding: Some(e.involved_object),
        related: e.related,
        reporting_controller: e.reporting_component,
        reporting_instance: e.reporting_instance,
        series: e.series.map(|s| ev::EventSeries {
            count: s.count.unwrap_or(0),
            last_observed_time: s.last_observed_time.unwrap_or(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                    jiff::Timestamp::UNIX_EPOCH,
                ),
            ),
        }),
        type_: e.type_,
    }
}

/// events.k8s.io/v1 Event -> core/v1 Event (storage).
pub fn events_v1_to_event(e: ev::Event) -> core::Event {
    core::Event {
        metadata: e.metadata,
        action: e.action,
        count: e.deprecated_count,
        first_timestamp: e.deprecated_first_timestamp,
        last_timestamp: e.deprecated_last_timestamp,
        source: e.deprecated_source,
        event_time: e.event_time,
        message: e.note,
        reason: e.reason,
        involved_object: e.regarding.unwrap_or_default(),
        related: e.related,
        reporting_component: e.reporting_controller,
        reporting_instance: e.reporting_instance,
        series: e.series.map(|s| core::EventSeries {
            count: Some(s.count),
            last_observed_time: Some(s.last_observed_time),
        }),
        type_: e.type_,
    }
}

/// events.k8s.io/v1 field labels in terms of core/v1 Event's.
pub fn events_v1_field_labels(l: &str) -> Option<&'static str> {
    Some(match l {
        "metadata.name" => "metadata.name",
        "metadata.namespace" => "metadata.namespace",
        "reason" => "reason",
        "type" => "type",
        "regarding.kind" => "involvedObject.kind",
        "regarding.namespace" => "involvedObject.namespace",
        "regarding.name" => "involvedObject.name",
        "regarding.uid" => "involvedObject.uid",
        "regarding.apiVersion" => "involvedObject.apiVersion",
        "regarding.resourceVersion" => "involvedObject.resourceVersion",
        "regarding.fieldPath" => "involvedObject.fieldPath",
        "reportingController" => "reportingComponent",
        "deprecatedSource" => "source",
        _ => return None,
    })
}

fn cpu_target(metrics: &[as2::MetricSpec]) -> Option<i32> {
    metrics
        .iter()
        .filter_map(|m| m.resource.as_ref())
        .find(|r| r.name == "cpu" && r.target.type_ == "Utilization")
        .and_then(|r| r.target.average_utilization)
}

/// autoscaling/v2 HPA (storage) -> autoscaling/v1. Metrics other than CPU utilization have no
/// v1 field (upstream keeps them in annotations; not yet done here).
pub fn hpa_v2_to_v1(h: as2::HorizontalPodAutoscaler) -> as1::HorizontalPodAutoscaler {
    let s = h.spec;
    let spec = as1::HorizontalPodAutoscalerSpec {
        max_replicas: s.max_replicas,
        min_replicas: s.min_replicas,
        scale_target_ref: as1::CrossVersionObjectReference {
            api_version: s.scale_target_ref.api_version,
            kind: s.scale_target_ref.kind,
            name: s.scale_target_ref.name,
        },
        target_cpu_utilization_percentage: cpu_target(s.metrics.as_deref().unwrap_or(&[])),
    };
    let status = h.status.map(|s| as1::HorizontalPodAutoscalerStatus {
        current_cpu_utilization_percentage: s
            .current_metrics
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter_map(|m| m.resource.as_ref())
            .find(|r| r.name == "cpu")
            .and_then(|r| r.current.average_utilization),
        current_replicas: s.current_replicas.unwrap_or(0),
        desired_replicas: s.desired_replicas,
        last_scale_time: s.last_scale_time,
        observed_generation: s.observed_generation,
    });
    as1::HorizontalPodAutoscaler {
        metadata: h.metadata,
        spec,
        status,
    }
}

/// autoscaling/v1 HPA -> autoscaling/v2 (storage).
pub fn hpa_v1_to_v2(h: as1::HorizontalPodAutoscaler) -> as2::HorizontalPodAutoscaler {
    let s = h.spec;
    let spec = as2::HorizontalPodAutoscalerSpec {
        behavior: None,
        max_replicas: s.max_replicas,
        min_replicas: s.min_replicas,
        scale_target_ref: as2::CrossVersionObjectReference {
            api_version: s.scale_target_ref.api_version,
            kind: s.scale_target_ref.kind,
            name: s.scale_target_ref.name,
        },
        metrics: s.target_cpu_utilization_percentage.map(|p| {
            vec![as2::MetricSpec {
                type_: "Resource".into(),
                resource: Some(as2::ResourceMetricSource {
                    name: "cpu".into(),
                    target: as2::MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(p),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]
        }),
    };
    let status = h.status.map(|s| as2::HorizontalPodAutoscalerStatus {
        conditions: None,
        current_metrics: s.current_cpu_utilization_percentage.map(|p| {
            vec![as2::MetricStatus {
                type_: "Resource".into(),
                resource: Some(as2::ResourceMetricStatus {
                    name: "cpu".into(),
                    current: as2::MetricValueStatus {
                        average_utilization: Some(p),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]
        }),
        current_replicas: Some(s.current_replicas),
        desired_replicas: s.desired_replicas,
        last_scale_time: s.last_scale_time,
        observed_generation: s.observed_generation,
    });
    as2::HorizontalPodAutoscaler {
        metadata: h.metadata,
        spec,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trip_and_hpa_cpu() {
        let e = core::Event {
            message: Some("hello".into()),
            reporting_component: Some("kubelet".into()),
            involved_object: core::ObjectReference {
                name: Some("p".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let v1 = event_to_events_v1(e.clone());
        assert_eq!(v1.note.as_deref(), Some("hello"));
        assert_eq!(v1.reporting_controller.as_deref(), Some("kubelet"));
        assert_eq!(events_v1_to_event(v1), e);
        let h = as1::HorizontalPodAutoscaler {
            spec: as1::HorizontalPodAutoscalerSpec {
                max_replicas: 5,
                target_cpu_utilization_percentage: Some(70),
                ..Default::default()
            },
            ..Default::default()
        };
        let v2 = hpa_v1_to_v2(h.clone());
        assert_eq!(cpu_target(v2.spec.metrics.as_deref().unwrap()), Some(70));
        assert_eq!(hpa_v2_to_v1(v2).spec, h.spec);
    }
}
