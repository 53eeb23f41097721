//! The strategy of one served version of a custom resource (mirrors apiextensions-apiserver
//! pkg/registry/customresource/{strategy,status_strategy,validator}.go): names are DNS
//! subdomains, generation is tracked, the status subresource owns `status`, and objects are
//! validated against the version's structural schema (OpenAPI, list types, CEL) and the scale
//! paths.

use super::object::CustomResource;
use crate::strategy::Strategy;
use apiserver_apiextensions::Structural;
use apiserver_apiextensions::helpers::{ScalePaths, get_path};
use apiserver_apiextensions::resource::{validate_replicas_path, validate_type_meta};
use apiserver_apimachinery::FieldError;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct CustomResourceStrategy {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub schema: Option<Arc<Structural>>,
    pub has_status: bool,
    pub scale: Option<ScalePaths>,
    /// Selectable fields as field-selector labels (`spec.color`).
    pub selectable: Vec<&'static str>,
}

fn json(obj: &CustomResource) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}

impl CustomResourceStrategy {
    fn validate_object(&self, new: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = validate_type_meta(new, &self.group, &self.version, &self.kind);
        if let Some(s) = &self.schema {
            errs.extend(s.validate(new, old));
        }
        if let Some(scale) = &self.scale {
            errs.extend(validate_replicas_path(new, &scale.spec_replicas_path));
            errs.extend(validate_replicas_path(new, &scale.status_replicas_path));
        }
        errs
    }
}

impl Strategy<CustomResource> for CustomResourceStrategy {
    fn has_status(&self) -> bool {
        self.has_status
    }
    fn tracks_generation(&self) -> bool {
        true
    }
    fn field_labels(&self) -> &[&'static str] {
        &self.selectable
    }
    fn fields(&self, obj: &CustomResource, out: &mut BTreeMap<String, String>) {
        if self.selectable.is_empty() {
            return;
        }
        let v = json(obj);
        for f in &self.selectable {
            let value = match get_path(&v, f) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => String::new(),
            };
            out.insert(f.to_string(), value);
        }
    }
    fn validate(&self, obj: &CustomResource) -> Vec<FieldError> {
        self.validate_object(&json(obj), None)
    }
    fn validate_update(&self, new: &CustomResource, old: &CustomResource) -> Vec<FieldError> {
        self.validate_object(&json(new), Some(&json(old)))
    }
    fn validate_status_update(
        &self,
        new: &CustomResource,
        old: &CustomResource,
    ) -> Vec<FieldError> {
        let (n, o) = (json(new), json(old));
        let mut errs = validate_type_meta(&n, &self.group, &self.version, &self.kind);
        if let Some(s) = &self.schema {
            errs.extend(s.validate_status(&n, Some(&o)));
        }
        if let Some(scale) = &self.scale {
            errs.extend(validate_replicas_path(&n, &scale.status_replicas_path));
        }
        errs
    }
}
