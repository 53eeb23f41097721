//! Workload controller rows (printers.go printReplicationController, printReplicaSet,
//! printDeployment, printDaemonSet, printStatefulSet, printJob, printCronJob,
//! printControllerRevision).

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobCondition};
use k8s_openapi::api::core::v1::{PodTemplateSpec, ReplicationController};
use serde_json::{Value, json};

use crate::duration::{human_duration_signed, since, time};
use crate::format::{
    age, bool_ptr, controller_of, format_label_selector, format_labels, layout_containers, name,
    selector_string,
};
use crate::{AGE, ColumnDef, NAME, TablePrinter, col, wide};

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";
const SELECTOR_DESC: &str = "A label query over pods that should match the replica count.";

fn containers_and_images() -> [ColumnDef; 2] {
    [
        wide("Containers", "string", CONTAINERS_DESC),
        wide("Images", "string", IMAGES_DESC),
    ]
}

fn template_cells(t: Option<&PodTemplateSpec>) -> (Value, Value) {
    let containers = t
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let (names, images) = layout_containers(containers);
    (json!(names), json!(images))
}

fn replica_columns() -> Vec<ColumnDef> {
    let [c, i] = containers_and_images();
    vec![
        NAME,
        col(
            "Desired",
            "integer",
            "Replicas is the number of desired replicas.",
        ),
        col(
            "Current",
            "integer",
            "Replicas is the most recently observed number of replicas.",
        ),
        col(
            "Ready",
            "integer",
            "The number of ready replicas for this controller.",
        ),
        AGE,
        c,
        i,
        wide("Selector", "string", SELECTOR_DESC),
    ]
}

impl TablePrinter for ReplicationController {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(replica_columns())
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let (names, images) = template_cells(spec.template.as_ref());
        vec![
            name(&self.metadata),
            json!(i64::from(spec.replicas.unwrap_or(1))),
            json!(i64::from(status.replicas)),
            json!(i64::from(status.ready_replicas.unwrap_or(0))),
            age(&self.metadata, now),
            names,
            images,
            json!(format_labels(spec.selector.as_ref())),
        ]
    }
}

impl TablePrinter for ReplicaSet {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(replica_columns())
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let (names, images) = template_cells(spec.template.as_ref());
        vec![
            name(&self.metadata),
            json!(i64::from(spec.replicas.unwrap_or(1))),
            json!(i64::from(status.replicas)),
            json!(i64::from(status.ready_replicas.unwrap_or(0))),
            age(&self.metadata, now),
            names,
            images,
            json!(format_label_selector(Some(&spec.selector))),
        ]
    }
}

impl TablePrinter for Deployment {
    fn columns() -> Option<Vec<ColumnDef>> {
        let [c, i] = containers_and_images();
        Some(vec![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "string",
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "string",
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            c,
            i,
            wide(
                "Selector",
                "string",
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let (names, images) = template_cells(Some(&spec.template));
        let selector =
            selector_string(Some(&spec.selector)).unwrap_or_else(|_| "<invalid>".to_string());
        vec![
            name(&self.metadata),
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            json!(i64::from(status.updated_replicas.unwrap_or(0))),
            json!(i64::from(status.available_replicas.unwrap_or(0))),
            age(&self.metadata, now),
            names,
            images,
            json!(selector),
        ]
    }
}

impl TablePrinter for DaemonSet {
    fn columns() -> Option<Vec<ColumnDef>> {
        let [c, i] = containers_and_images();
        Some(vec![
            NAME,
            col(
                "Desired",
                "integer",
                "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod).",
            ),
            col(
                "Current",
                "integer",
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            col(
                "Ready",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            col(
                "Up-to-date",
                "integer",
                "The total number of nodes that are running updated daemon pod",
            ),
            col(
                "Available",
                "integer",
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            col(
                "Node Selector",
                "string",
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            AGE,
            c,
            i,
            wide(
                "Selector",
                "string",
                "A label query over pods that are managed by the daemon set.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let (names, images) = template_cells(Some(&spec.template));
        let node_selector = spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.node_selector.as_ref());
        vec![
            name(&self.metadata),
            json!(i64::from(status.desired_number_scheduled)),
            json!(i64::from(status.current_number_scheduled)),
            json!(i64::from(status.number_ready)),
            json!(i64::from(status.updated_number_scheduled.unwrap_or(0))),
            json!(i64::from(status.number_available.unwrap_or(0))),
            json!(format_labels(node_selector)),
            age(&self.metadata, now),
            names,
            images,
            json!(format_label_selector(Some(&spec.selector))),
        ]
    }
}

impl TablePrinter for StatefulSet {
    fn columns() -> Option<Vec<ColumnDef>> {
        let [c, i] = containers_and_images();
        Some(vec![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            AGE,
            c,
            i,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let (names, images) = template_cells(Some(&spec.template));
        vec![
            name(&self.metadata),
            json!(format!(
                "{}/{}",
                status.ready_replicas.unwrap_or(0),
                spec.replicas.unwrap_or(1)
            )),
            age(&self.metadata, now),
            names,
            images,
        ]
    }
}

/// `hasJobCondition`: the first condition of the type decides.
fn job_condition(conditions: &[JobCondition], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| c.type_ == type_)
        .is_some_and(|c| c.status == "True")
}

impl TablePrinter for Job {
    fn columns() -> Option<Vec<ColumnDef>> {
        let [c, i] = containers_and_images();
        Some(vec![
            NAME,
            col("Status", "string", "Status of the job."),
            col(
                "Completions",
                "string",
                "The number of pods which reached phase Succeeded.",
            ),
            col("Duration", "string", "Time required to complete the job."),
            AGE,
            c,
            i,
            wide(
                "Selector",
                "string",
                "A label query over pods that should match the pod count.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let succeeded = status.succeeded.unwrap_or(0);
        let completions = match spec.completions {
            Some(c) => format!("{succeeded}/{c}"),
            None => match spec.parallelism.unwrap_or(0) {
                p if p > 1 => format!("{succeeded}/1 of {p}"),
                _ => format!("{succeeded}/1"),
            },
        };
        let duration = match (&status.start_time, &status.completion_time) {
            (None, _) => String::new(),
            (Some(start), None) => human_duration_signed(now.duration_since(start.0)),
            (Some(start), Some(end)) => human_duration_signed(end.0.duration_since(start.0)),
        };
        let conditions = status.conditions.as_deref().unwrap_or_default();
        let state = if job_condition(conditions, "Complete") {
            "Complete"
        } else if job_condition(conditions, "Failed") {
            "Failed"
        } else if self.metadata.deletion_timestamp.is_some() {
            "Terminating"
        } else if job_condition(conditions, "Suspended") {
            "Suspended"
        } else if job_condition(conditions, "FailureTarget") {
            "FailureTarget"
        } else {
            "Running"
        };
        let (names, images) = template_cells(Some(&spec.template));
        vec![
            name(&self.metadata),
            json!(state),
            json!(completions),
            json!(duration),
            age(&self.metadata, now),
            names,
            images,
            json!(format_label_selector(spec.selector.as_ref())),
        ]
    }
}

impl TablePrinter for CronJob {
    fn columns() -> Option<Vec<ColumnDef>> {
        let [c, i] = containers_and_images();
        Some(vec![
            NAME,
            col(
                "Schedule",
                "string",
                "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
            ),
            col(
                "Timezone",
                "string",
                "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.",
            ),
            col(
                "Suspend",
                "boolean",
                "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.",
            ),
            col(
                "Active",
                "integer",
                "A list of pointers to currently running jobs.",
            ),
            col(
                "Last Schedule",
                "string",
                "Information when was the last time the job was successfully scheduled.",
            ),
            AGE,
            c,
            i,
            wide(
                "Selector",
                "string",
                "A label query over pods that should match the pod count.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone();
        let status = self.status.clone().unwrap_or_default();
        let last_schedule = match &status.last_schedule_time {
            Some(t) => since(time(Some(t)), now),
            None => "<none>".to_string(),
        };
        let job_spec = spec.job_template.spec.unwrap_or_default();
        let (names, images) = template_cells(Some(&job_spec.template));
        vec![
            name(&self.metadata),
            json!(spec.schedule),
            json!(spec.time_zone.unwrap_or_else(|| "<none>".to_string())),
            json!(bool_ptr(spec.suspend)),
            json!(status.active.map_or(0, |a| a.len() as i64)),
            json!(last_schedule),
            age(&self.metadata, now),
            names,
            images,
            json!(format_label_selector(job_spec.selector.as_ref())),
        ]
    }
}

impl TablePrinter for ControllerRevision {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col("Controller", "string", "Controller of the object"),
            col(
                "Revision",
                "string",
                "Revision indicates the revision of the state represented by Data.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let controller = match controller_of(&self.metadata) {
            None => "<none>".to_string(),
            Some(r) => {
                // schema.ParseGroupVersion: "" or "v1" have no group, "g/v" has one.
                let group = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
                    [_] => Some(""),
                    [g, _] => Some(*g),
                    _ => None,
                };
                match group {
                    None => "<invalid>".to_string(),
                    Some("") if r.kind.is_empty() => r.name.clone(),
                    Some("") => format!("{}/{}", r.kind.to_lowercase(), r.name),
                    Some(g) => format!("{}.{}/{}", r.kind.to_lowercase(), g.to_lowercase(), r.name),
                }
            }
        };
        vec![
            name(&self.metadata),
            json!(controller),
            json!(self.revision.unwrap_or(0)),
            age(&self.metadata, now),
        ]
    }
}
