//! API errors and their one rendering as `metav1.Status`
//! (mirrors apimachinery/pkg/api/errors/errors.go).

use crate::field::FieldError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ListMeta, Status, StatusCause, StatusDetails,
};

/// `metav1.StatusReason` values used by the apiserver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    NotFound,
    AlreadyExists,
    Conflict,
    Invalid,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    UnsupportedMediaType,
    Forbidden,
    Unauthorized,
    Gone,
    Expired,
    Timeout,
    TooManyRequests,
    RequestEntityTooLarge,
    InternalError,
    ServiceUnavailable,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Invalid => "Invalid",
            Reason::BadRequest => "BadRequest",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::Forbidden => "Forbidden",
            Reason::Unauthorized => "Unauthorized",
            Reason::Gone => "Gone",
            Reason::Expired => "Expired",
            Reason::Timeout => "Timeout",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::InternalError => "InternalError",
            Reason::ServiceUnavailable => "ServiceUnavailable",
        }
    }
    pub fn code(self) -> u16 {
        match self {
            Reason::NotFound => 404,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Invalid => 422,
            Reason::BadRequest => 400,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::UnsupportedMediaType => 415,
            Reason::Forbidden => 403,
            Reason::Unauthorized => 401,
            Reason::Gone | Reason::Expired => 410,
            Reason::Timeout => 504,
            Reason::TooManyRequests => 429,
            Reason::RequestEntityTooLarge => 413,
            Reason::InternalError => 500,
            Reason::ServiceUnavailable => 503,
        }
    }
}

/// Identifies what an error is about: resource (plural, group) and name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    /// Plural resource for most errors, Kind for `Invalid` (as upstream).
    pub kind: String,
    pub name: String,
}

impl Target {
    /// `pods` or `deployments.apps`, as upstream's GroupResource prints.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// An error answered to a client. Classified once; rendered in exactly one place (`to_status`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub reason: Reason,
    pub message: String,
    pub target: Option<Target>,
    pub causes: Vec<StatusCause>,
    pub retry_after_seconds: Option<i32>,
    /// Overrides the HTTP code (e.g. 500 with a custom reason).
    pub code: Option<u16>,
    /// A continue token offered with a 410 for an expired list continuation.
    pub list_continue: Option<String>,
}

impl ApiError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            reason,
            message: message.into(),
            target: None,
            causes: Vec::new(),
            retry_after_seconds: None,
            code: None,
            list_continue: None,
        }
    }
    fn with_target(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.target = Some(Target {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
        });
        self
    }
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let t = Target {
            group: group.into(),
            kind: resource.into(),
            name: name.into(),
        };
        ApiError::new(
            Reason::NotFound,
            format!("{} \"{}\" not found", t.qualified(), name),
        )
        .with_target(group, resource, name)
    }
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let t = Target {
            group: group.into(),
            kind: resource.into(),
            name: name.into(),
        };
        ApiError::new(
            Reason::AlreadyExists,
            format!("{} \"{}\" already exists", t.qualified(), name),
        )
        .with_target(group, resource, name)
    }
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let t = Target {
            group: group.into(),
            kind: resource.into(),
            name: name.into(),
        };
        ApiError::new(
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                t.qualified(),
                name,
                why
            ),
        )
        .with_target(group, resource, name)
    }
    /// The message of a stale update (upstream's OptimisticLockErrorMsg).
    pub fn stale(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    /// 422 Invalid, `Kind "name" is invalid: ...`, with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let list = if errs.len() == 1 {
            errs[0].to_string()
        } else {
            format!(
                "[{}]",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let qualified = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let mut e = ApiError::new(
            Reason::Invalid,
            format!("{qualified} \"{name}\" is invalid: {list}"),
        )
        .with_target(group, kind, name);
        e.causes = errs
            .iter()
            .map(|fe| StatusCause {
                reason: Some(fe.kind.reason().to_string()),
                message: Some(fe.body()),
                field: Some(fe.field.to_string()),
            })
            .collect();
        e
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(Reason::BadRequest, message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(Reason::MethodNotAllowed, message)
    }
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let t = Target {
            group: group.into(),
            kind: resource.into(),
            name: name.into(),
        };
        let msg = if name.is_empty() {
            format!("{} is forbidden: {}", t.qualified(), why)
        } else {
            format!("{} \"{}\" is forbidden: {}", t.qualified(), name, why)
        };
        ApiError::new(Reason::Forbidden, msg).with_target(group, resource, name)
    }
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(Reason::Expired, message)
    }
    /// 410 for a watch or list from a compacted revision.
    pub fn too_old_resource_version(requested: i64, oldest: i64) -> Self {
        ApiError::new(
            Reason::Expired,
            format!("too old resource version: {requested} ({oldest})"),
        )
    }
    pub fn internal(message: impl Into<String>) -> Self {
        let m = message.into();
        ApiError::new(
            Reason::InternalError,
            format!("Internal error occurred: {m}"),
        )
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        ApiError::new(Reason::Timeout, message)
    }
    pub fn unsupported_media_type(ct: &str) -> Self {
        ApiError::new(
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {ct})"
            ),
        )
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        ApiError::new(Reason::NotAcceptable, message)
    }
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        ApiError::new(Reason::ServiceUnavailable, message)
    }
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(Reason::RequestEntityTooLarge, message)
    }

    pub fn http_code(&self) -> u16 {
        self.code.unwrap_or_else(|| self.reason.code())
    }

    /// The one rendering of an error as `metav1.Status`.
    pub fn to_status(&self) -> Status {
        let details = match (
            &self.target,
            self.causes.is_empty(),
            self.retry_after_seconds,
        ) {
            (None, true, None) => None,
            _ => {
                let t = self.target.clone().unwrap_or_default();
                Some(StatusDetails {
                    name: (!t.name.is_empty()).then_some(t.name),
                    group: (!t.group.is_empty()).then_some(t.group),
                    kind: (!t.kind.is_empty()).then_some(t.kind),
                    causes: (!self.causes.is_empty()).then(|| self.causes.clone()),
                    retry_after_seconds: self.retry_after_seconds,
                    uid: None,
                })
            }
        };
        Status {
            code: Some(i32::from(self.http_code())),
            details,
            message: Some(self.message.clone()),
            metadata: ListMeta {
                continue_: self.list_continue.clone(),
                ..ListMeta::default()
            },
            reason: Some(self.reason.as_str().to_string()),
            status: Some("Failure".to_string()),
        }
    }
}

/// A successful `Status` (e.g. the answer to a delete of an object that is gone at once).
pub fn success_status(group: &str, kind: &str, name: &str, uid: Option<String>) -> Status {
    Status {
        code: None,
        details: Some(StatusDetails {
            name: Some(name.to_string()),
            group: (!group.is_empty()).then(|| group.to_string()),
            kind: Some(kind.to_string()),
            uid,
            causes: None,
            retry_after_seconds: None,
        }),
        message: None,
        metadata: ListMeta::default(),
        reason: None,
        status: Some("Success".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::{FieldError, FieldPath};

    #[test]
    fn not_found_and_conflict_messages() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        let s = e.to_status();
        assert_eq!(s.code, Some(404));
        assert_eq!(s.reason.as_deref(), Some("NotFound"));
        assert_eq!(s.details.unwrap().kind.as_deref(), Some("deployments"));
        let e = ApiError::stale("", "configmaps", "c");
        assert_eq!(e.http_code(), 409);
        assert!(e.message.starts_with(
            "Operation cannot be fulfilled on configmaps \"c\": the object has been modified"
        ));
    }

    #[test]
    fn invalid_lists_causes() {
        let errs = vec![
            FieldError::required(&FieldPath::root("spec").child("containers"), ""),
            FieldError::invalid_str(&FieldPath::root("metadata").child("name"), "A", "bad"),
        ];
        let e = ApiError::invalid("", "Pod", "A", &errs);
        assert_eq!(
            e.message,
            "Pod \"A\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"A\": bad]"
        );
        let s = e.to_status();
        assert_eq!(s.code, Some(422));
        let causes = s.details.unwrap().causes.unwrap();
        assert_eq!(causes[0].reason.as_deref(), Some("FieldValueRequired"));
        assert_eq!(causes[1].field.as_deref(), Some("metadata.name"));
    }
}
