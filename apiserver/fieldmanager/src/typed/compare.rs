//! Comparison of two values of one type (mirrors structured-merge-diff typed/compare.go): the
//! fields the right-hand side added, modified and removed. Leaves (scalars, atomic or empty
//! lists and maps) are compared by value; a list item or map entry present on one side only is
//! itself added/removed besides its leaves.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{error_at, list_item_element, map_item_type};
use crate::path::PathElement;
use crate::schema::{Handling, ListKind, ListType, MapType, Schema, TypeRef};
use crate::set::Set;
use crate::value::equals;

/// What changed from the left-hand to the right-hand object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    pub removed: Set,
    pub modified: Set,
    pub added: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.removed.is_empty() && self.modified.is_empty() && self.added.is_empty()
    }

    /// Drops `fields` and everything under them from the three sets (upstream `ExcludeFields`).
    pub fn exclude_fields(&mut self, fields: &Set) {
        if fields.is_empty() {
            return;
        }
        self.removed = self.removed.recursive_difference(fields);
        self.modified = self.modified.recursive_difference(fields);
        self.added = self.added.recursive_difference(fields);
    }
}

/// Compares `lhs` (old) with `rhs` (new), both of type `tr`.
pub fn compare(
    schema: &Schema,
    tr: &TypeRef,
    lhs: &Value,
    rhs: &Value,
) -> Result<Comparison, String> {
    let mut w = Walker {
        schema,
        cmp: Comparison::default(),
        path: Vec::new(),
    };
    w.walk(tr, Some(lhs), Some(rhs))?;
    Ok(w.cmp)
}

struct Walker<'a> {
    schema: &'a Schema,
    cmp: Comparison,
    path: Vec<PathElement>,
}

impl<'a> Walker<'a> {
    fn walk(&mut self, tr: &TypeRef, l: Option<&Value>, r: Option<&Value>) -> Result<(), String> {
        let schema = self.schema;
        let no_type = || error_at(&self.path, "schema error: no type found matching");
        let al = schema.handling(tr, l).ok_or_else(no_type)?;
        let ar = schema.handling(tr, r).ok_or_else(no_type)?;
        let in_leaf = if r.is_none() {
            self.handle(al, l, r)?
        } else if l.is_none() || Schema::same_handling(&al, &ar) {
            self.handle(ar, l, r)?
        } else {
            self.handle(al, l, r)?;
            self.handle(ar, l, r)?
        };
        if !in_leaf {
            if l.is_none() {
                self.cmp.added.insert(&self.path);
            } else if r.is_none() {
                self.cmp.removed.insert(&self.path);
            }
        }
        Ok(())
    }

    /// Handles the value one way; returns whether it was a leaf.
    fn handle(
        &mut self,
        h: Handling<'_>,
        l: Option<&Value>,
        r: Option<&Value>,
    ) -> Result<bool, String> {
        match h {
            Handling::Scalar => {
                self.leaf(l, r);
                Ok(true)
            }
            Handling::List(list) => {
                let lhs = l.and_then(Value::as_array);
                let rhs = r.and_then(Value::as_array);
                let promote = lhs.is_none_or(|v| v.is_empty()) && rhs.is_none_or(|v| v.is_empty());
                if list.kind == ListKind::Atomic || promote {
                    self.leaf(l, r);
                    return Ok(true);
                }
                if lhs.is_some() || rhs.is_some() {
                    self.list_items(
                        list,
                        lhs.map_or(&[][..], Vec::as_slice),
                        rhs.map_or(&[][..], Vec::as_slice),
                    )?;
                }
                Ok(false)
            }
            Handling::Map(map, atomic) => {
                let lhs = l.and_then(Value::as_object);
                let rhs = r.and_then(Value::as_object);
                let promote = lhs.is_none_or(|m| m.is_empty()) && rhs.is_none_or(|m| m.is_empty());
                if atomic || promote {
                    self.leaf(l, r);
                    return Ok(true);
                }
                self.map_items(map, lhs, rhs)?;
                Ok(false)
            }
        }
    }

    fn leaf(&mut self, l: Option<&Value>, r: Option<&Value>) {
        match (l, r) {
            (None, _) => self.cmp.added.insert(&self.path),
            (_, None) => self.cmp.removed.insert(&self.path),
            (Some(a), Some(b)) => {
                if !equals(a, b) {
                    self.cmp.modified.insert(&self.path);
                }
            }
        }
    }

    fn child(
        &mut self,
        pe: PathElement,
        tr: &TypeRef,
        l: Option<&Value>,
        r: Option<&Value>,
    ) -> Result<(), String> {
        self.path.push(pe);
        let res = self.walk(tr, l, r);
        self.path.pop();
        res
    }

    fn list_items(&mut self, list: &ListType, lhs: &[Value], rhs: &[Value]) -> Result<(), String> {
        // Every distinct element (left order, then new right ones) with its occurrences.
        let mut order: Vec<PathElement> = Vec::new();
        let mut index: BTreeMap<PathElement, (Vec<&Value>, Vec<&Value>)> = BTreeMap::new();
        for (side, items) in [(0, lhs), (1, rhs)] {
            for (i, item) in items.iter().enumerate() {
                let pe = list_item_element(self.schema, list, item)
                    .map_err(|e| error_at(&self.path, format!("element {i}: {e}")))?;
                let entry = index.entry(pe.clone()).or_insert_with(|| {
                    order.push(pe);
                    (Vec::new(), Vec::new())
                });
                if side == 0 {
                    entry.0.push(item);
                } else {
                    entry.1.push(item);
                }
            }
        }
        for pe in order {
            let Some((ls, rs)) = index.get(&pe) else {
                continue;
            };
            let (ls, rs) = (ls.clone(), rs.clone());
            match (ls.len(), rs.len()) {
                (0..=1, 0..=1) => {
                    self.child(pe, &list.element, ls.first().copied(), rs.first().copied())?
                }
                (2.., 2..) => {
                    let same =
                        ls.len() == rs.len() && ls.iter().zip(&rs).all(|(a, b)| equals(a, b));
                    if !same {
                        self.path.push(pe);
                        self.cmp.modified.insert(&self.path);
                        self.path.pop();
                    }
                }
                (2.., _) => {
                    if let Some(r0) = rs.first() {
                        self.child(pe.clone(), &list.element, None, Some(r0))?;
                    }
                    self.path.push(pe);
                    self.cmp.removed.insert(&self.path);
                    self.path.pop();
                }
                (_, _) => {
                    if let Some(l0) = ls.first() {
                        self.child(pe.clone(), &list.element, Some(l0), None)?;
                    }
                    self.path.push(pe);
                    self.cmp.added.insert(&self.path);
                    self.path.pop();
                }
            }
        }
        Ok(())
    }

    fn map_items(
        &mut self,
        map: &MapType,
        lhs: Option<&serde_json::Map<String, Value>>,
        rhs: Option<&serde_json::Map<String, Value>>,
    ) -> Result<(), String> {
        if let Some(lhs) = lhs {
            for (k, lv) in lhs {
                let rv = rhs.and_then(|m| m.get(k));
                self.child(
                    PathElement::Field(k.clone()),
                    map_item_type(map, k),
                    Some(lv),
                    rv,
                )?;
            }
        }
        if let Some(rhs) = rhs {
            for (k, rv) in rhs {
                if lhs.is_some_and(|m| m.contains_key(k)) {
                    continue;
                }
                self.child(
                    PathElement::Field(k.clone()),
                    map_item_type(map, k),
                    None,
                    Some(rv),
                )?;
            }
        }
        Ok(())
    }
}
