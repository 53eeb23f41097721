//! Server-side printing: columns and cells from the printers crate, per item
//! (mirrors apiserver/pkg/registry/rest/table.go and the printer handlers).

use apiserver_apimachinery::ApiError;
use apiserver_printers::{TablePrinter, default_cells, default_columns};
use bytes::Bytes;
use serde::de::DeserializeOwned;

pub struct TableRowParts {
    pub cells: Vec<serde_json::Value>,
    pub conditions: Vec<serde_json::Value>,
    /// The item's served JSON (for includeObject).
    pub object: Bytes,
}

pub struct TableParts {
    /// `columnDefinitions` in their wire form.
    pub columns: Vec<serde_json::Value>,
    pub rows: Vec<TableRowParts>,
}

pub fn table_of<K>(items: &[Bytes]) -> Result<TableParts, ApiError>
where
    K: TablePrinter
        + DeserializeOwned
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    let now = jiff::Timestamp::now();
    let (columns, custom) = match K::columns() {
        Some(c) => (c, true),
        None => (default_columns(), false),
    };
    let mut rows = Vec::with_capacity(items.len());
    for json in items {
        let obj: K = serde_json::from_slice(json).map_err(|e| ApiError::internal(e.to_string()))?;
        let cells = if custom {
            obj.cells(now)
        } else {
            default_cells(obj.metadata())
        };
        rows.push(TableRowParts {
            cells,
            conditions: obj.row_conditions(),
            object: json.clone(),
        });
    }
    Ok(TableParts {
        columns: columns.iter().map(|c| c.to_json()).collect(),
        rows,
    })
}
