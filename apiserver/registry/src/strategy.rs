//! The per-resource strategy (mirrors apiserver/pkg/registry/rest/{create,update,delete}.go
//! strategies): everything that differs between resources. Pure and synchronous, except
//! admission that has to look other objects up (`admit_create_async`).

use apiserver_apimachinery::FieldError;
use apiserver_apimachinery::names::NameRule;
use std::collections::BTreeMap;

/// What a delete does with an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GracefulDelete {
    /// Delete at once.
    Now,
    /// Mark with deletionTimestamp = now + seconds and keep.
    After(i64),
}

pub trait Strategy<K>: Send + Sync + 'static {
    /// How names of this resource are validated.
    fn name_rule(&self) -> NameRule {
        NameRule::Subdomain
    }
    /// Whether the object has a status that only the status subresource may change.
    fn has_status(&self) -> bool {
        false
    }
    /// Whether a create discards the status a client sent (all but nodes).
    fn reset_status_on_create(&self) -> bool {
        true
    }
    /// Refuses deletes the resource never allows (the immortal namespaces).
    fn check_delete(&self, _obj: &K) -> Result<(), apiserver_apimachinery::ApiError> {
        Ok(())
    }
    /// Field selector labels beyond metadata.name and metadata.namespace.
    fn field_labels(&self) -> &[&'static str] {
        &[]
    }
    /// Whether metadata.generation is kept (bumped on changes outside metadata and status).
    fn tracks_generation(&self) -> bool {
        false
    }
    /// Clears or sets what the server owns on create (status, derived fields).
    fn prepare_for_create(&self, _obj: &mut K) {}
    /// Mutating admission on create that reads other objects (and may wait for them), run
    /// before `admit_create`; `namespace` is the object's.
    fn admit_create_async<'a>(
        &'a self,
        _namespace: &'a str,
        _obj: &'a mut K,
    ) -> futures::future::BoxFuture<'a, Result<(), apiserver_apimachinery::ApiError>> {
        Box::pin(std::future::ready(Ok(())))
    }
    /// Mutating admission on create (upstream's built-in admission plugins for this resource),
    /// after defaulting and before validation.
    fn admit_create(&self, _obj: &mut K) -> Result<(), apiserver_apimachinery::ApiError> {
        Ok(())
    }
    /// Adjusts an update of `old` to `new` before validation.
    fn prepare_for_update(&self, _new: &mut K, _old: &K) {}
    /// Validation beyond object metadata, on create.
    fn validate(&self, _obj: &K) -> Vec<FieldError> {
        Vec::new()
    }
    /// Validation beyond object metadata, on update.
    fn validate_update(&self, _new: &K, _old: &K) -> Vec<FieldError> {
        Vec::new()
    }
    /// Validation of a status subresource write beyond the type's own (custom resources: the
    /// status schema).
    fn validate_status_update(&self, _new: &K, _old: &K) -> Vec<FieldError> {
        Vec::new()
    }
    /// Selectable fields beyond metadata.name and metadata.namespace.
    fn fields(&self, _obj: &K, _out: &mut BTreeMap<String, String>) {}
    /// Whether PUT of an absent object creates it.
    fn allow_create_on_update(&self) -> bool {
        false
    }
    /// Whether an update without resourceVersion is allowed.
    fn allow_unconditional_update(&self) -> bool {
        true
    }
    /// How a delete with the given requested grace period proceeds.
    fn graceful_delete(&self, _obj: &K, _requested: Option<i64>) -> GracefulDelete {
        GracefulDelete::Now
    }
    /// Whether a delete answers with the deleted object (pods) or a Status.
    fn return_deleted_object(&self) -> bool {
        false
    }
    /// Whether a delete of this object only marks it (namespaces with spec finalizers).
    fn delete_marks_only(&self, _obj: &K) -> bool {
        false
    }
    /// Changes made to an object that is being marked for deletion by `delete_marks_only`.
    fn prepare_for_delete_mark(&self, _obj: &mut K) {}
    /// Allocates what the object needs from shared ranges (service IPs and ports), after
    /// validation of the request and before storage. Returns allocation errors.
    fn allocate(&self, _obj: &mut K, _old: Option<&K>) -> Vec<FieldError> {
        Vec::new()
    }
    /// A lease TTL for stored objects (events).
    fn ttl_seconds(&self) -> Option<i64> {
        None
    }
}

/// The strategy of a resource with no special rules beyond its type's defaulting and validation.
pub struct DefaultStrategy {
    pub name_rule: NameRule,
    pub has_status: bool,
    pub tracks_generation: bool,
    pub allow_create_on_update: bool,
}

impl DefaultStrategy {
    pub const fn new() -> Self {
        DefaultStrategy {
            name_rule: NameRule::Subdomain,
            has_status: false,
            tracks_generation: false,
            allow_create_on_update: false,
        }
    }
    pub const fn with_status(mut self) -> Self {
        self.has_status = true;
        self.tracks_generation = true;
        self
    }
    pub const fn generation(mut self) -> Self {
        self.tracks_generation = true;
        self
    }
    pub const fn names(mut self, rule: NameRule) -> Self {
        self.name_rule = rule;
        self
    }
    pub const fn create_on_update(mut self) -> Self {
        self.allow_create_on_update = true;
        self
    }
}

impl Default for DefaultStrategy {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: apiserver_apis::ApiType + 'static> Strategy<K> for DefaultStrategy {
    fn name_rule(&self) -> NameRule {
        self.name_rule
    }
    fn has_status(&self) -> bool {
        self.has_status
    }
    fn tracks_generation(&self) -> bool {
        self.tracks_generation
    }
    fn validate(&self, obj: &K) -> Vec<FieldError> {
        obj.validate()
    }
    fn validate_update(&self, new: &K, old: &K) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn allow_create_on_update(&self) -> bool {
        self.allow_create_on_update
    }
}
