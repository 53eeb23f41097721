//! Autoscaling and disruption-budget rows (printers.go printHorizontalPodAutoscaler with
//! formatHPAMetrics, and printPodDisruptionBudget).

use jiff::Timestamp;
use k8s_openapi::api::autoscaling::{v1 as hpav1, v2 as hpav2};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{Value, json};

use crate::format::{age, int_or_string, name};
use crate::quantity::opt_quantity;
use crate::{AGE, ColumnDef, NAME, TablePrinter, col};

fn hpa_columns() -> Vec<ColumnDef> {
    vec![
        NAME,
        col(
            "Reference",
            "string",
            "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource.",
        ),
        col(
            "Targets",
            "string",
            "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).",
        ),
        col(
            "MinPods",
            "string",
            "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.",
        ),
        col(
            "MaxPods",
            "string",
            "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up.",
        ),
        col(
            "Replicas",
            "string",
            "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler.",
        ),
        AGE,
    ]
}

impl TablePrinter for hpav2::HorizontalPodAutoscaler {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(hpa_columns())
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let reference = format!(
            "{}/{}",
            spec.scale_target_ref.kind, spec.scale_target_ref.name
        );
        let metrics = format_hpa_metrics(
            spec.metrics.as_deref().unwrap_or_default(),
            status.current_metrics.as_deref().unwrap_or_default(),
        );
        vec![
            name(&self.metadata),
            json!(reference),
            json!(metrics),
            json!(
                spec.min_replicas
                    .map_or("<unset>".to_string(), |m| m.to_string())
            ),
            json!(i64::from(spec.max_replicas)),
            json!(i64::from(status.current_replicas.unwrap_or(0))),
            age(&self.metadata, now),
        ]
    }
}

/// autoscaling/v1 converts to the internal type as a single CPU utilization metric.
impl TablePrinter for hpav1::HorizontalPodAutoscaler {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(hpa_columns())
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let reference = format!(
            "{}/{}",
            spec.scale_target_ref.kind, spec.scale_target_ref.name
        );
        let metrics = match spec.target_cpu_utilization_percentage {
            None => "<none>".to_string(),
            Some(target) => {
                let current = status
                    .current_cpu_utilization_percentage
                    .map_or("<unknown>".to_string(), |c| format!("{c}%"));
                format!("cpu: {current}/{target}%")
            }
        };
        vec![
            name(&self.metadata),
            json!(reference),
            json!(metrics),
            json!(
                spec.min_replicas
                    .map_or("<unset>".to_string(), |m| m.to_string())
            ),
            json!(i64::from(spec.max_replicas)),
            json!(i64::from(status.current_replicas)),
            age(&self.metadata, now),
        ]
    }
}

/// `formatHPAMetrics`: at most two targets, then "+ N more...".
fn format_hpa_metrics(specs: &[hpav2::MetricSpec], statuses: &[hpav2::MetricStatus]) -> String {
    if specs.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 2;
    let unknown = || "<unknown>".to_string();
    let mut list: Vec<String> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let st = statuses.get(i);
        let item = match spec.type_.as_str() {
            "External" => spec.external.as_ref().map(|src| {
                let cur = st.and_then(|s| s.external.as_ref()).map(|s| &s.current);
                value_or_average(&src.target, cur)
            }),
            "Pods" => spec.pods.as_ref().map(|src| {
                let cur = st
                    .and_then(|s| s.pods.as_ref())
                    .map_or_else(unknown, |s| opt_quantity(s.current.average_value.as_ref()));
                format!("{cur}/{}", opt_quantity(src.target.average_value.as_ref()))
            }),
            "Object" => spec.object.as_ref().map(|src| {
                let cur = st.and_then(|s| s.object.as_ref()).map(|s| &s.current);
                value_or_average(&src.target, cur)
            }),
            "Resource" => spec.resource.as_ref().map(|src| {
                let cur = st.and_then(|s| s.resource.as_ref()).map(|s| &s.current);
                format!("{}: {}", src.name, utilization(&src.target, cur))
            }),
            "ContainerResource" => spec.container_resource.as_ref().map(|src| {
                let cur = st
                    .and_then(|s| s.container_resource.as_ref())
                    .map(|s| &s.current);
                format!("{}: {}", src.name, utilization(&src.target, cur))
            }),
            _ => None,
        };
        list.push(item.unwrap_or_else(|| "<unknown type>".to_string()));
    }
    let count = list.len();
    if count > MAX {
        list.truncate(MAX);
        return format!("{} + {} more...", list.join(", "), count - MAX);
    }
    list.join(", ")
}

/// External and Object metrics: "current/target (avg)" for average values, else values.
fn value_or_average(
    target: &hpav2::MetricTarget,
    cur: Option<&hpav2::MetricValueStatus>,
) -> String {
    if let Some(avg) = &target.average_value {
        let current = cur
            .and_then(|c| c.average_value.as_ref())
            .map_or("<unknown>".to_string(), |q| opt_quantity(Some(q)));
        format!("{current}/{} (avg)", opt_quantity(Some(avg)))
    } else {
        let current = cur.map_or("<unknown>".to_string(), |c| opt_quantity(c.value.as_ref()));
        format!("{current}/{}", opt_quantity(target.value.as_ref()))
    }
}

/// Resource and ContainerResource metrics: average value, else utilization percentages.
fn utilization(target: &hpav2::MetricTarget, cur: Option<&hpav2::MetricValueStatus>) -> String {
    if let Some(avg) = &target.average_value {
        let current = cur.map_or("<unknown>".to_string(), |c| {
            opt_quantity(c.average_value.as_ref())
        });
        format!("{current}/{}", opt_quantity(Some(avg)))
    } else {
        let current = cur
            .and_then(|c| c.average_utilization)
            .map_or("<unknown>".to_string(), |u| format!("{u}%"));
        let target = target
            .average_utilization
            .map_or("<auto>".to_string(), |u| format!("{u}%"));
        format!("{current}/{target}")
    }
}

impl TablePrinter for PodDisruptionBudget {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
            ),
            col(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
            ),
            col(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let or_na = |v: Option<&_>| v.map_or("N/A".to_string(), int_or_string);
        vec![
            name(&self.metadata),
            json!(or_na(spec.min_available.as_ref())),
            json!(or_na(spec.max_unavailable.as_ref())),
            json!(i64::from(status.disruptions_allowed.unwrap_or(0))),
            age(&self.metadata, now),
        ]
    }
}
