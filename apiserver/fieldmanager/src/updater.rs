//! Ownership bookkeeping of apply and update operations (mirrors structured-merge-diff
//! merge/update.go and merge/conflict.go): which manager owns which fields, conflicts between
//! managers, pruning of fields an applier stopped applying. One API version: conversion between
//! versions is the identity here (entries of other versions are compared as if they were this
//! one).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::path::Path;
use crate::schema::{Schema, TypeRef};
use crate::set::Set;
use crate::typed::{self, Comparison, ensure_named_fields_are_members};
use crate::value::equals;

/// The fields one manager owns, at the API version it used, and whether it applied them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedSet {
    pub set: Set,
    pub api_version: String,
    pub applied: bool,
}

/// Manager identifier (upstream's JSON identifier string) -> owned fields.
pub type ManagedFields = BTreeMap<String, VersionedSet>;

/// One field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: Path,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conflict with {:?}: {}", self.manager, self.path)
    }
}

/// Why an operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdateError {
    /// Apply conflicts, ordered by manager identifier then path.
    Conflicts(Vec<Conflict>),
    /// The objects do not fit the schema (message with the offending path).
    Invalid(String),
}

impl fmt::Display for UpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Conflicts(c) => {
                let parts: Vec<String> = c.iter().map(|c| c.to_string()).collect();
                write!(f, "{}", parts.join("\n"))
            }
            UpdateError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

fn conflicts_from(sets: &ManagedFields) -> Vec<Conflict> {
    let mut out = Vec::new();
    for (manager, vs) in sets {
        for path in vs.set.paths() {
            out.push(Conflict {
                manager: manager.clone(),
                path,
            });
        }
    }
    out
}

/// Runs apply and update operations on objects of one type.
pub struct Updater<'a> {
    pub schema: &'a Schema,
    pub root: &'a TypeRef,
    /// Fields whose changes nobody owns (upstream's reset fields, e.g. `status` on the main
    /// resource).
    pub ignored: Option<&'a Set>,
}

impl<'a> Updater<'a> {
    fn filter(&self, set: Set) -> Set {
        match self.ignored {
            Some(ignored) => set.recursive_difference(ignored),
            None => set,
        }
    }

    fn field_set(&self, v: &Value) -> Result<Set, UpdateError> {
        typed::to_field_set(self.schema, self.root, v).map_err(UpdateError::Invalid)
    }

    fn ensure(&self, set: &Set) -> Set {
        ensure_named_fields_are_members(self.schema, Some(self.root), set)
    }

    fn remove(&self, v: &Value, set: &Set) -> Value {
        typed::remove_items(self.schema, self.root, v, set)
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// Compares, takes the changed fields away from the other managers (conflicts unless
    /// `force`), and returns the comparison.
    fn update(
        &self,
        old: &Value,
        new: &Value,
        managers: &mut ManagedFields,
        workflow: &str,
        force: bool,
    ) -> Result<Comparison, UpdateError> {
        let mut cmp =
            typed::compare(self.schema, self.root, old, new).map_err(UpdateError::Invalid)?;
        if let Some(ignored) = self.ignored {
            cmp.exclude_fields(ignored);
        }
        let changed = cmp.modified.union(&cmp.added);
        let mut conflicts = ManagedFields::new();
        for (manager, vs) in managers.iter() {
            if manager == workflow {
                continue;
            }
            let c = vs.set.intersection(&changed);
            if !c.is_empty() {
                conflicts.insert(
                    manager.clone(),
                    VersionedSet {
                        set: c,
                        api_version: vs.api_version.clone(),
                        applied: false,
                    },
                );
            }
        }
        if !force && !conflicts.is_empty() {
            return Err(UpdateError::Conflicts(conflicts_from(&conflicts)));
        }
        for (manager, vs) in managers.iter_mut() {
            if manager == workflow {
                continue;
            }
            if let Some(c) = conflicts.get(manager) {
                vs.set = vs.set.difference(&c.set);
            }
            if !cmp.removed.is_empty() {
                vs.set = vs.set.difference(&cmp.removed);
            }
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok(cmp)
    }

    /// The fields a non-apply create of `new` gives its manager: what `update_op` records when
    /// the live object is empty and nobody owns anything yet (everything added, minus the
    /// ignored fields).
    pub fn created_fields(&self, new: &Value) -> Result<Set, UpdateError> {
        let empty = Value::Object(Map::new());
        let mut cmp =
            typed::compare(self.schema, self.root, &empty, new).map_err(UpdateError::Invalid)?;
        if let Some(ignored) = self.ignored {
            cmp.exclude_fields(ignored);
        }
        Ok(cmp.added)
    }

    /// A non-apply write by `manager` (upstream `Updater.Update`): it takes the fields it
    /// changed from everybody else (never a conflict).
    pub fn update_op(
        &self,
        live: &Value,
        new: &Value,
        version: &str,
        managers: &mut ManagedFields,
        manager: &str,
    ) -> Result<(), UpdateError> {
        let cmp = self.update(live, new, managers, manager, true)?;
        let previous = managers
            .remove(manager)
            .map(|vs| vs.set)
            .unwrap_or_default();
        let set = previous
            .difference(&cmp.removed)
            .union(&cmp.modified)
            .union(&cmp.added);
        let set = self.filter(set);
        if !set.is_empty() {
            managers.insert(
                manager.to_string(),
                VersionedSet {
                    set,
                    api_version: version.to_string(),
                    applied: false,
                },
            );
        }
        Ok(())
    }

    /// An apply of `config` by `manager` (upstream `Updater.Apply`): the merged object and
    /// whether it differs from `live`.
    pub fn apply(
        &self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: &mut ManagedFields,
        manager: &str,
        force: bool,
    ) -> Result<(Value, bool), UpdateError> {
        let merged =
            typed::merge(self.schema, self.root, live, config).map_err(UpdateError::Invalid)?;
        let last = managers.get(manager).cloned();
        let set = self.filter(self.field_set(config)?);
        managers.insert(
            manager.to_string(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: true,
            },
        );
        let new = self.prune(merged, managers, last.as_ref())?;
        self.update(live, &new, managers, manager, force)?;
        let changed = !equals(live, &new);
        Ok((new, changed))
    }

    /// Removes what the applier owned before and no longer applies, unless someone else owns
    /// it or it was never the applier's.
    fn prune(
        &self,
        merged: Value,
        managers: &ManagedFields,
        last: Option<&VersionedSet>,
    ) -> Result<Value, UpdateError> {
        let Some(last) = last.filter(|l| !l.set.is_empty()) else {
            return Ok(merged);
        };
        let pruned = self.remove(&merged, &self.ensure(&last.set));
        let pruned = self.add_back_owned(&merged, &pruned, managers)?;
        self.add_back_dangling(&merged, &pruned, &last.set)
    }

    fn add_back_owned(
        &self,
        merged: &Value,
        pruned: &Value,
        managers: &ManagedFields,
    ) -> Result<Value, UpdateError> {
        let mut managed = Set::new();
        for vs in managers.values() {
            managed.union_in_place(&vs.set);
        }
        let merged_set = self.ensure(&self.field_set(merged)?);
        let pruned_set = self.ensure(&self.field_set(pruned)?);
        let keep = pruned_set.union(&self.ensure(&managed));
        Ok(self.remove(merged, &merged_set.difference(&keep)))
    }

    fn add_back_dangling(
        &self,
        merged: &Value,
        pruned: &Value,
        last: &Set,
    ) -> Result<Value, UpdateError> {
        let pruned_set = self.ensure(&self.field_set(pruned)?);
        let merged_set = self.ensure(&self.field_set(merged)?);
        let last = self.ensure(last);
        let to_remove = merged_set.difference(&pruned_set).intersection(&last);
        Ok(self.remove(merged, &to_remove))
    }
}
