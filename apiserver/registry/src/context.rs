//! Per-request inputs of the registry: who asks, dry-run, field manager, list and delete options.

use apiserver_apimachinery::selector::{FieldSelector, LabelSelector};
use std::collections::BTreeMap;
use std::future::Future;

tokio::task_local! {
    static USER_EXTRA: BTreeMap<String, Vec<String>>;
}

/// Runs `f` with the authenticated user's extra attributes (e.g. the pod of a service account
/// token) visible to [`user_extra`]. They travel beside [`UserInfo`] rather than in it so that
/// every place building a `UserInfo` need not change.
pub async fn with_user_extra<F: Future>(extra: BTreeMap<String, Vec<String>>, f: F) -> F::Output {
    USER_EXTRA.scope(extra, f).await
}

/// The extra attributes of the request's user (empty outside [`with_user_extra`]).
pub fn user_extra() -> BTreeMap<String, Vec<String>> {
    USER_EXTRA.try_with(Clone::clone).unwrap_or_default()
}

/// The authenticated user of a request.
#[derive(Clone, Debug, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    #[default]
    Strict,
}

impl FieldValidation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "Strict" => Some(FieldValidation::Strict),
            "Warn" => Some(FieldValidation::Warn),
            "Ignore" => Some(FieldValidation::Ignore),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub user: UserInfo,
    /// The namespace of the request path, if any.
    pub namespace: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    /// The `fieldManager` parameter, else derived from the User-Agent (upstream's default).
    pub field_manager: Option<String>,
    pub field_validation: FieldValidation,
    /// `force` (server-side apply only).
    pub force: bool,
    /// Set by server-side apply, whose merge already recorded managedFields: the store must not
    /// track the write again as an Update.
    pub managed_fields_done: bool,
}

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: String,
    pub resource_version_match: String,
    pub limit: i64,
    pub continue_token: String,
    pub send_initial_events: Option<bool>,
    pub allow_bookmarks: bool,
    pub timeout_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let ct = ct.split(';').next().unwrap_or("").trim();
        match ct {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(PatchType::Apply),
            _ => None,
        }
    }
}
