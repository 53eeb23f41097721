//! Core (v1) rows that are not workloads, networking or storage (printers.go printNode,
//! printNamespace, printSecret, printServiceAccount, printConfigMap, printEvent,
//! printComponentStatus, printResourceQuota); events.k8s.io Events print like core Events.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    ComponentStatus, ConfigMap, Event, EventSource, LimitRange, Namespace, Node, ObjectReference,
    ResourceQuota, Secret, ServiceAccount,
};
use k8s_openapi::api::events::v1 as eventsv1;
use serde_json::{Value, json};

use crate::duration::{micro_time, since, time};
use crate::format::{age, name, s};
use crate::quantity::{canonical_quantity, quantity_or_zero};
use crate::{AGE, ColumnDef, NAME, NAME_DESCRIPTION, TablePrinter, col, default_printer, wide};

default_printer!(LimitRange);

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

impl TablePrinter for Node {
    fn columns() -> Option<Vec<ColumnDef>> {
        let addresses = "List of addresses reachable to the node.";
        Some(vec![
            NAME,
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            AGE,
            col("Version", "string", "Kubelet Version reported by the node."),
            wide("Internal-IP", "string", addresses),
            wide("External-IP", "string", addresses),
            wide(
                "OS-Image",
                "string",
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            wide(
                "Kernel-Version",
                "string",
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            wide(
                "Container-Runtime",
                "string",
                "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        // Later conditions of the same type win, as in upstream's condition map.
        let ready = status
            .conditions
            .iter()
            .flatten()
            .rev()
            .find(|c| c.type_ == "Ready");
        let mut states = vec![match ready {
            Some(c) if c.status == "True" => "Ready".to_string(),
            Some(_) => "NotReady".to_string(),
            None => "Unknown".to_string(),
        }];
        if self.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
            states.push("SchedulingDisabled".to_string());
        }
        let roles: BTreeSet<String> = self
            .metadata
            .labels
            .iter()
            .flatten()
            .filter_map(|(k, v)| {
                if let Some(role) = k.strip_prefix(NODE_ROLE_PREFIX) {
                    (!role.is_empty()).then(|| role.to_string())
                } else if k == NODE_ROLE_LABEL && !v.is_empty() {
                    Some(v.clone())
                } else {
                    None
                }
            })
            .collect();
        let roles = roles.into_iter().collect::<Vec<_>>().join(",");
        let info = status.node_info.clone().unwrap_or_default();
        let or_unknown = |v: String| {
            if v.is_empty() {
                "<unknown>".to_string()
            } else {
                v
            }
        };
        let address = |t: &str| {
            status
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == t)
                .map_or("<none>".to_string(), |a| a.address.clone())
        };
        vec![
            name(&self.metadata),
            json!(states.join(",")),
            json!(if roles.is_empty() {
                "<none>".to_string()
            } else {
                roles
            }),
            age(&self.metadata, now),
            json!(info.kubelet_version),
            json!(address("InternalIP")),
            json!(address("ExternalIP")),
            json!(or_unknown(info.os_image)),
            json!(or_unknown(info.kernel_version)),
            json!(or_unknown(info.container_runtime_version)),
        ]
    }
}

impl TablePrinter for Namespace {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col("Status", "string", "The status of the namespace"),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let phase = self.status.as_ref().and_then(|s| s.phase.clone());
        vec![
            name(&self.metadata),
            json!(phase.unwrap_or_default()),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for Secret {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Type",
                "string",
                "Used to facilitate programmatic handling of secret data.",
            ),
            col("Data", "string", "Data contains the secret data."),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        // stringData is merged into data on conversion to the internal type.
        let mut keys: BTreeSet<&String> = self.data.iter().flatten().map(|(k, _)| k).collect();
        keys.extend(self.string_data.iter().flatten().map(|(k, _)| k));
        vec![
            name(&self.metadata),
            json!(s(self.type_.as_ref())),
            json!(keys.len() as i64),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for ServiceAccount {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Secrets",
                "string",
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.secrets.as_ref().map_or(0, |s| s.len() as i64)),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for ConfigMap {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col("Data", "string", "Data contains the configuration data."),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let n = self.data.as_ref().map_or(0, BTreeMap::len)
            + self.binary_data.as_ref().map_or(0, BTreeMap::len);
        vec![
            name(&self.metadata),
            json!(n as i64),
            age(&self.metadata, now),
        ]
    }
}

fn event_columns() -> Vec<ColumnDef> {
    vec![
        col(
            "Last Seen",
            "string",
            "The time at which the most recent occurrence of this event was recorded.",
        ),
        col(
            "Type",
            "string",
            "Type of this event (Normal, Warning), new types could be added in the future",
        ),
        col(
            "Reason",
            "string",
            "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
        ),
        col("Object", "string", "The object that this event is about."),
        wide(
            "Subobject",
            "string",
            "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2].",
        ),
        wide(
            "Source",
            "string",
            "The component reporting this event. Should be a short machine understandable string.",
        ),
        col(
            "Message",
            "string",
            "A human-readable description of the status of this operation.",
        ),
        wide(
            "First Seen",
            "string",
            "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        ),
        wide(
            "Count",
            "string",
            "The number of times this event has occurred.",
        ),
        ColumnDef {
            name: "Name",
            type_: "string",
            format: "name",
            description: NAME_DESCRIPTION,
            priority: 1,
        },
    ]
}

/// The fields printEvent reads, in the shape of the internal (core) Event.
struct EventView<'a> {
    first: Option<Timestamp>,
    last: Option<Timestamp>,
    event_time: Option<Timestamp>,
    count: i32,
    series: Option<(i32, Option<Timestamp>)>,
    involved: Option<&'a ObjectReference>,
    source: Option<&'a EventSource>,
    reporting_controller: Option<&'a String>,
    reporting_instance: Option<&'a String>,
    type_: Option<&'a String>,
    reason: Option<&'a String>,
    message: Option<&'a String>,
}

fn event_cells(meta_name: Value, e: EventView<'_>, now: Timestamp) -> Vec<Value> {
    let first = match e.first {
        Some(t) => since(Some(t), now),
        None => since(e.event_time, now),
    };
    let mut last = match e.last {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = e.count;
    if let Some((series_count, observed)) = e.series {
        last = since(observed, now);
        count = series_count;
    } else if count == 0 {
        // Singleton events do not set a count in the new API.
        count = 1;
    }
    let kind = e
        .involved
        .and_then(|o| o.kind.as_deref())
        .unwrap_or("")
        .to_lowercase();
    let target = match e.involved.and_then(|o| o.name.as_deref()) {
        Some(n) if !n.is_empty() => format!("{kind}/{n}"),
        _ => kind,
    };
    let first_non_empty = |a: Option<&String>, b: Option<&String>| {
        [a, b]
            .into_iter()
            .flatten()
            .find(|v| !v.is_empty())
            .cloned()
            .unwrap_or_default()
    };
    let component = first_non_empty(
        e.source.and_then(|s| s.component.as_ref()),
        e.reporting_controller,
    );
    let instance = first_non_empty(e.source.and_then(|s| s.host.as_ref()), e.reporting_instance);
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        json!(last),
        json!(s(e.type_)),
        json!(s(e.reason)),
        json!(target),
        json!(s(e.involved.and_then(|o| o.field_path.as_ref()))),
        json!(source),
        json!(s(e.message).trim()),
        json!(first),
        json!(i64::from(count)),
        meta_name,
    ]
}

impl TablePrinter for Event {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(event_columns())
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let view = EventView {
            first: time(self.first_timestamp.as_ref()),
            last: time(self.last_timestamp.as_ref()),
            event_time: micro_time(self.event_time.as_ref()),
            count: self.count.unwrap_or(0),
            series: self.series.as_ref().map(|s| {
                (
                    s.count.unwrap_or(0),
                    micro_time(s.last_observed_time.as_ref()),
                )
            }),
            involved: Some(&self.involved_object),
            source: self.source.as_ref(),
            reporting_controller: self.reporting_component.as_ref(),
            reporting_instance: self.reporting_instance.as_ref(),
            type_: self.type_.as_ref(),
            reason: self.reason.as_ref(),
            message: self.message.as_ref(),
        };
        event_cells(name(&self.metadata), view, now)
    }
}

/// events.k8s.io/v1 Events are stored and printed as core Events.
impl TablePrinter for eventsv1::Event {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(event_columns())
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let view = EventView {
            first: time(self.deprecated_first_timestamp.as_ref()),
            last: time(self.deprecated_last_timestamp.as_ref()),
            event_time: micro_time(self.event_time.as_ref()),
            count: self.deprecated_count.unwrap_or(0),
            series: self
                .series
                .as_ref()
                .map(|s| (s.count, micro_time(Some(&s.last_observed_time)))),
            involved: self.regarding.as_ref(),
            source: self.deprecated_source.as_ref(),
            reporting_controller: self.reporting_controller.as_ref(),
            reporting_instance: self.reporting_instance.as_ref(),
            type_: self.type_.as_ref(),
            reason: self.reason.as_ref(),
            message: self.note.as_ref(),
        };
        event_cells(name(&self.metadata), view, now)
    }
}

impl TablePrinter for ComponentStatus {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col("Status", "string", "Status of the component conditions"),
            col("Message", "string", "Message of the component conditions"),
            col("Error", "string", "Error of the component conditions"),
        ])
    }

    fn cells(&self, _now: Timestamp) -> Vec<Value> {
        let healthy = self
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Healthy");
        let (status, message, error) = match healthy {
            None => ("Unknown", String::new(), String::new()),
            Some(c) => (
                if c.status == "True" {
                    "Healthy"
                } else {
                    "Unhealthy"
                },
                s(c.message.as_ref()),
                s(c.error.as_ref()),
            ),
        };
        vec![
            name(&self.metadata),
            json!(status),
            json!(message),
            json!(error),
        ]
    }
}

impl TablePrinter for ResourceQuota {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Request",
                "string",
                "Request represents a minimum amount of cpu/memory that a container may consume.",
            ),
            col(
                "Limit",
                "string",
                "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let status = self.status.clone().unwrap_or_default();
        let hard = status.hard.unwrap_or_default();
        let used = status.used.unwrap_or_default();
        let mut requests: Vec<String> = Vec::new();
        let mut limits: Vec<String> = Vec::new();
        // BTreeMap iteration is the sorted resource-name order upstream uses.
        for (resource, hard_q) in &hard {
            let entry = format!(
                "{resource}: {}/{}",
                quantity_or_zero(used.get(resource)),
                canonical_quantity(hard_q)
            );
            let pieces: Vec<&str> = resource.split('.').collect();
            if pieces.len() > 1 && pieces[0] == "limits" {
                limits.push(entry);
            } else {
                requests.push(entry);
            }
        }
        vec![
            name(&self.metadata),
            json!(requests.join(", ")),
            json!(limits.join(", ")),
            age(&self.metadata, now),
        ]
    }
}
