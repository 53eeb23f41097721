//! Storage rows (printers.go printPersistentVolume, printPersistentVolumeClaim,
//! printStorageClass, printVolumeAttributesClass, printCSIDriver, printCSINode,
//! printCSIStorageCapacity, printVolumeAttachment).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::{
    CSIDriver, CSINode, CSIStorageCapacity, StorageClass, VolumeAttachment, VolumeAttributesClass,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};

use crate::format::{access_modes, age, annotation, name, s};
use crate::quantity::{canonical_quantity, quantity_or_zero};
use crate::{AGE, ColumnDef, NAME, TablePrinter, col, wide};

/// The legacy storage-class annotation, which wins over `spec.storageClassName`.
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";
const DEFAULT_VAC_ANNOTATION: &str = "volumeattributesclass.alpha.kubernetes.io/is-default-class";

fn or_unset(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "<unset>".to_string())
}

fn phase_or_terminating(meta: &ObjectMeta, phase: Option<&String>) -> String {
    if meta.deletion_timestamp.is_some() {
        "Terminating".to_string()
    } else {
        s(phase)
    }
}

impl TablePrinter for PersistentVolume {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Capacity",
                "string",
                "capacity is the description of the persistent volume's resources and capacity.",
            ),
            col(
                "Access Modes",
                "string",
                "accessModes contains all ways the volume can be mounted.",
            ),
            col(
                "Reclaim Policy",
                "string",
                "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim.",
            ),
            col(
                "Status",
                "string",
                "phase indicates if a volume is available, bound to a claim, or released by a claim.",
            ),
            col(
                "Claim",
                "string",
                "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim.",
            ),
            col("StorageClass", "string", "StorageClass of the pv"),
            col(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pv",
            ),
            col(
                "Reason",
                "string",
                "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.",
            ),
            AGE,
            wide(
                "VolumeMode",
                "string",
                "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let claim = spec.claim_ref.as_ref().map_or(String::new(), |r| {
            format!("{}/{}", s(r.namespace.as_ref()), s(r.name.as_ref()))
        });
        let size = quantity_or_zero(spec.capacity.as_ref().and_then(|c| c.get("storage")));
        let class = annotation(&self.metadata, BETA_STORAGE_CLASS_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| s(spec.storage_class_name.as_ref()));
        vec![
            name(&self.metadata),
            json!(size),
            json!(access_modes(spec.access_modes.as_ref())),
            json!(s(spec.persistent_volume_reclaim_policy.as_ref())),
            json!(phase_or_terminating(&self.metadata, status.phase.as_ref())),
            json!(claim),
            json!(class),
            json!(or_unset(spec.volume_attributes_class_name.as_ref())),
            json!(s(status.reason.as_ref())),
            age(&self.metadata, now),
            json!(or_unset(spec.volume_mode.as_ref())),
        ]
    }
}

impl TablePrinter for PersistentVolumeClaim {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Status",
                "string",
                "phase represents the current phase of PersistentVolumeClaim.",
            ),
            col(
                "Volume",
                "string",
                "volumeName is the binding reference to the PersistentVolume backing this claim.",
            ),
            col(
                "Capacity",
                "string",
                "capacity represents the actual resources of the underlying volume.",
            ),
            col(
                "Access Modes",
                "string",
                "accessModes contains the actual access modes the volume backing the PVC has.",
            ),
            col("StorageClass", "string", "StorageClass of the pvc"),
            col(
                "VolumeAttributesClass",
                "string",
                "VolumeAttributesClass of the pvc",
            ),
            AGE,
            wide(
                "VolumeMode",
                "string",
                "volumeMode defines what type of volume is required by the claim.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let status = self.status.clone().unwrap_or_default();
        let volume = s(spec.volume_name.as_ref());
        let (capacity, modes) = if volume.is_empty() {
            (String::new(), String::new())
        } else {
            (
                quantity_or_zero(status.capacity.as_ref().and_then(|c| c.get("storage"))),
                access_modes(status.access_modes.as_ref()),
            )
        };
        let class = annotation(&self.metadata, BETA_STORAGE_CLASS_ANNOTATION)
            .cloned()
            .unwrap_or_else(|| s(spec.storage_class_name.as_ref()));
        vec![
            name(&self.metadata),
            json!(phase_or_terminating(&self.metadata, status.phase.as_ref())),
            json!(volume),
            json!(capacity),
            json!(modes),
            json!(class),
            json!(or_unset(spec.volume_attributes_class_name.as_ref())),
            age(&self.metadata, now),
            json!(or_unset(spec.volume_mode.as_ref())),
        ]
    }
}

impl TablePrinter for StorageClass {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Provisioner",
                "string",
                "provisioner indicates the type of the provisioner.",
            ),
            col(
                "ReclaimPolicy",
                "string",
                "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.",
            ),
            col(
                "VolumeBindingMode",
                "string",
                "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound. When unset, VolumeBindingImmediate is used.",
            ),
            col(
                "AllowVolumeExpansion",
                "string",
                "allowVolumeExpansion shows whether the storage class allow volume expand.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let is_true = |k| annotation(&self.metadata, k).is_some_and(|v| v == "true");
        let mut display = s(self.metadata.name.as_ref());
        if is_true(DEFAULT_CLASS_ANNOTATION) || is_true(BETA_DEFAULT_CLASS_ANNOTATION) {
            display.push_str(" (default)");
        }
        vec![
            json!(display),
            json!(self.provisioner),
            json!(
                self.reclaim_policy
                    .clone()
                    .unwrap_or_else(|| "Delete".to_string())
            ),
            json!(
                self.volume_binding_mode
                    .clone()
                    .unwrap_or_else(|| "Immediate".to_string())
            ),
            json!(self.allow_volume_expansion.unwrap_or(false)),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for VolumeAttributesClass {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "DriverName",
                "string",
                "Name of the CSI driver This field is immutable.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let mut display = s(self.metadata.name.as_ref());
        if annotation(&self.metadata, DEFAULT_VAC_ANNOTATION).is_some_and(|v| v == "true") {
            display.push_str(" (default)");
        }
        vec![
            json!(display),
            json!(self.driver_name),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for CSIDriver {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "AttachRequired",
                "boolean",
                "attachRequired indicates this CSI volume driver requires an attach operation.",
            ),
            col(
                "PodInfoOnMount",
                "boolean",
                "podInfoOnMount indicates this CSI volume driver requires additional pod information (like podName, podUID, etc.) during mount operations.",
            ),
            col(
                "StorageCapacity",
                "boolean",
                "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report.",
            ),
            col(
                "TokenRequests",
                "string",
                "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication.",
            ),
            col(
                "RequiresRepublish",
                "boolean",
                "requiresRepublish indicates the CSI driver wants `NodePublishVolume` being periodically called to reflect any possible change in the mounted volume.",
            ),
            col(
                "Modes",
                "string",
                "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = &self.spec;
        let modes = spec
            .volume_lifecycle_modes
            .clone()
            .unwrap_or_default()
            .join(",");
        let tokens = spec
            .token_requests
            .as_ref()
            .map_or("<unset>".to_string(), |t| {
                t.iter()
                    .map(|r| r.audience.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            });
        vec![
            name(&self.metadata),
            json!(spec.attach_required.unwrap_or(true)),
            json!(spec.pod_info_on_mount.unwrap_or(false)),
            json!(spec.storage_capacity.unwrap_or(false)),
            json!(tokens),
            json!(spec.requires_republish.unwrap_or(false)),
            json!(if modes.is_empty() {
                "<none>".to_string()
            } else {
                modes
            }),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for CSINode {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Drivers",
                "integer",
                "Drivers indicates the number of CSI drivers registered on the node",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.spec.drivers.len() as i64),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for CSIStorageCapacity {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "StorageClassName",
                "string",
                "storageClassName represents the name of the StorageClass that the reported capacity applies to.",
            ),
            col(
                "Capacity",
                "string",
                "capacity is the value reported by the CSI driver in its GetCapacityResponse for a GetCapacityRequest with topology and parameters that match the previous fields.",
            ),
        ])
    }

    fn cells(&self, _now: Timestamp) -> Vec<Value> {
        let capacity = self
            .capacity
            .as_ref()
            .map_or("<unset>".to_string(), canonical_quantity);
        vec![
            name(&self.metadata),
            json!(self.storage_class_name),
            json!(capacity),
        ]
    }
}

impl TablePrinter for VolumeAttachment {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            ColumnDef {
                name: "Attacher",
                type_: "string",
                format: "name",
                description: "attacher indicates the name of the volume driver that MUST handle this request.",
                priority: 0,
            },
            col(
                "PV",
                "string",
                "persistentVolumeName represents the name of the persistent volume to attach.",
            ),
            col(
                "Node",
                "string",
                "nodeName represents the node that the volume should be attached to.",
            ),
            col(
                "Attached",
                "boolean",
                "attached indicates the volume is successfully attached.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(self.spec.attacher),
            json!(s(self.spec.source.persistent_volume_name.as_ref())),
            json!(self.spec.node_name),
            json!(self.status.as_ref().is_some_and(|s| s.attached)),
            age(&self.metadata, now),
        ]
    }
}
