//! Pure API machinery shared by every apiserver crate (mirrors k8s.io/apimachinery):
//! errors rendered as `metav1.Status`, field errors, label and field selectors, resource
//! descriptions, resource versions and continue tokens, name validation and patches.

pub mod error;
pub mod field;
pub mod names;
pub mod patch;
pub mod rawmeta;
pub mod resource;
pub mod rv;
pub mod schema;
pub mod selector;

pub use error::{ApiError, Reason};
pub use field::{FieldError, FieldErrorType, FieldPath};
pub use resource::{GroupVersionKind, GroupVersionResource, ResourceInfo, Scope};
