//! Server-side printing for `kubectl get`: metav1.Table column definitions and row cells for
//! every built-in type (mirrors pkg/printers/internalversion/printers.go, the aggregator's
//! APIService table in kube-aggregator/pkg/registry/apiservice/etcd/etcd.go, and the default
//! table convertor of k8s.io/apiserver/pkg/registry/rest/table.go).
//!
//! The apiserver always generates tables with `Wide: true`, so `cells` returns one value per
//! column, including the priority-1 (`-o wide`) ones; kubectl hides those itself.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

mod admission;
mod autoscaling;
mod cluster;
mod core;
mod duration;
mod format;
mod network;
mod pods;
mod quantity;
mod storage;
mod workloads;

pub use cluster::flow_schema_order;
pub use duration::{
    human_duration, human_duration_signed, translate_micro_timestamp_since,
    translate_timestamp_since,
};
pub use format::{format_label_selector, format_labels};
pub use quantity::canonical_quantity;

/// One `metav1.TableColumnDefinition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: &'static str,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: &'static str,
    /// `""`, `"name"` or `"date"`.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 for default columns, 1 for the `-o wide` ones.
    pub priority: i32,
}

impl ColumnDef {
    /// The wire form (all five fields are always present upstream).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// Table printing for one top-level resource type.
pub trait TablePrinter {
    /// Upstream's column definitions, or `None` when upstream has no printer for the type
    /// (the caller then uses [`default_columns`]).
    fn columns() -> Option<Vec<ColumnDef>>
    where
        Self: Sized;

    /// The row cells, one per column (wide columns included). For types whose `columns()` is
    /// `None` these are the [`default_cells`].
    fn cells(&self, now: Timestamp) -> Vec<Value>;

    /// `metav1.TableRowCondition`s of the row (only pods set any: `Completed`).
    fn row_conditions(&self) -> Vec<Value> {
        Vec::new()
    }
}

/// `metav1.ObjectMeta` swagger doc of `name`.
pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `metav1.ObjectMeta` swagger doc of `creationTimestamp`.
pub const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// Columns of the default table convertor: Name and Created At.
pub fn default_columns() -> Vec<ColumnDef> {
    vec![
        NAME,
        ColumnDef {
            name: "Created At",
            type_: "date",
            format: "",
            description: CREATION_TIMESTAMP_DESCRIPTION,
            priority: 0,
        },
    ]
}

/// Cells of the default table convertor: the name and the creation time in RFC 3339 UTC
/// (`0001-01-01T00:00:00Z` when unset, like Go's zero time).
pub fn default_cells(meta: &ObjectMeta) -> Vec<Value> {
    let created = match meta.creation_timestamp.as_ref() {
        Some(t) => t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "0001-01-01T00:00:00Z".to_string(),
    };
    vec![json!(meta.name.clone().unwrap_or_default()), json!(created)]
}

/// The Name column every printer starts with.
pub(crate) const NAME: ColumnDef = ColumnDef {
    name: "Name",
    type_: "string",
    format: "name",
    description: NAME_DESCRIPTION,
    priority: 0,
};

/// The Age column.
pub(crate) const AGE: ColumnDef = col("Age", "string", CREATION_TIMESTAMP_DESCRIPTION);

/// A priority-0 column without format.
pub(crate) const fn col(name: &'static str, type_: &'static str, desc: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        type_,
        format: "",
        description: desc,
        priority: 0,
    }
}

/// A priority-1 (`-o wide`) column without format.
pub(crate) const fn wide(name: &'static str, type_: &'static str, desc: &'static str) -> ColumnDef {
    ColumnDef {
        name,
        type_,
        format: "",
        description: desc,
        priority: 1,
    }
}

/// Implements [`TablePrinter`] with the default table for types upstream prints that way.
macro_rules! default_printer {
    ($($t:ty),* $(,)?) => {
        $(
            impl $crate::TablePrinter for $t {
                fn columns() -> Option<Vec<$crate::ColumnDef>> {
                    None
                }
                fn cells(&self, _now: jiff::Timestamp) -> Vec<serde_json::Value> {
                    $crate::default_cells(&self.metadata)
                }
            }
        )*
    };
}
pub(crate) use default_printer;
