//! Merge of an applied configuration into an object (mirrors structured-merge-diff
//! typed/merge.go with its keep-right-hand-side rule): leaves and atomic lists/maps take the
//! right-hand value, granular maps merge key by key, associative lists merge item by item with
//! upstream's ordering (left items kept in place, right items in the right's relative order).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{Map, Value};

use super::{error_at, list_item_element, map_item_type};
use crate::path::PathElement;
use crate::schema::{Handling, ListKind, ListType, MapType, Schema, TypeRef};

/// `rhs` merged into `lhs`, both of type `tr`.
pub fn merge(schema: &Schema, tr: &TypeRef, lhs: &Value, rhs: &Value) -> Result<Value, String> {
    let mut w = Walker {
        schema,
        path: Vec::new(),
    };
    Ok(w.walk(tr, Some(lhs), Some(rhs))?
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// Each distinct element of a list and its item (`None` when the element is duplicated).
type Observed<'v> = BTreeMap<PathElement, Option<&'v Value>>;

struct Walker<'a> {
    schema: &'a Schema,
    path: Vec<PathElement>,
}

impl<'a> Walker<'a> {
    fn walk(
        &mut self,
        tr: &TypeRef,
        l: Option<&Value>,
        r: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        let schema = self.schema;
        let no_type = || error_at(&self.path, "schema error: no type found matching");
        let al = schema.handling(tr, l).ok_or_else(no_type)?;
        let ar = schema.handling(tr, r).ok_or_else(no_type)?;
        if r.is_none() {
            self.handle(al, l, r)
        } else if l.is_none() || Schema::same_handling(&al, &ar) {
            self.handle(ar, l, r)
        } else {
            // The value changed kind: the left side is walked (for its errors), the right wins.
            self.handle(al, l, r)?;
            self.handle(ar, l, r)
        }
    }

    fn handle(
        &mut self,
        h: Handling<'_>,
        l: Option<&Value>,
        r: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        let leaf = || r.or(l).cloned();
        match h {
            Handling::Scalar => Ok(leaf()),
            Handling::List(list) => {
                let lhs = l.and_then(Value::as_array);
                let rhs = r.and_then(Value::as_array);
                let promote = lhs.is_none_or(|v| v.is_empty()) && rhs.is_none_or(|v| v.is_empty());
                if list.kind == ListKind::Atomic || promote {
                    return Ok(leaf());
                }
                self.list_items(
                    list,
                    lhs.map_or(&[][..], Vec::as_slice),
                    rhs.map_or(&[][..], Vec::as_slice),
                )
            }
            Handling::Map(map, atomic) => {
                let lhs = l.and_then(Value::as_object);
                let rhs = r.and_then(Value::as_object);
                let promote = lhs.is_none_or(|m| m.is_empty()) && rhs.is_none_or(|m| m.is_empty());
                if atomic || promote {
                    return Ok(leaf());
                }
                self.map_items(map, lhs, rhs)
            }
        }
    }

    fn child(
        &mut self,
        pe: PathElement,
        tr: &TypeRef,
        l: Option<&Value>,
        r: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        self.path.push(pe);
        let res = self.walk(tr, l, r);
        self.path.pop();
        res
    }

    /// The path elements of a list's items and the item of each (a duplicated left item maps to
    /// null, as upstream marks duplicates); duplicates on the right are an error.
    fn index<'v>(
        &self,
        list: &ListType,
        items: &'v [Value],
        allow_duplicates: bool,
    ) -> Result<(Vec<PathElement>, Observed<'v>), String> {
        let mut pes = Vec::with_capacity(items.len());
        let mut observed: Observed<'v> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let pe = list_item_element(self.schema, list, item)
                .map_err(|e| error_at(&self.path, format!("element {i}: {e}")))?;
            if let Some(slot) = observed.get_mut(&pe) {
                if !allow_duplicates {
                    return Err(error_at(
                        &self.path,
                        format!("duplicate entries for key {pe}"),
                    ));
                }
                *slot = None;
            } else {
                observed.insert(pe.clone(), Some(item));
            }
            pes.push(pe);
        }
        Ok((pes, observed))
    }

    fn list_items<'v>(
        &mut self,
        list: &ListType,
        lhs: &'v [Value],
        rhs: &'v [Value],
    ) -> Result<Option<Value>, String> {
        const NULL: &Value = &Value::Null;
        let (rhs_pes, observed_rhs) = self.index(list, rhs, false)?;
        let (lhs_pes, observed_lhs) = self.index(list, lhs, true)?;
        let item = |m: &Observed<'v>, pe: &PathElement| m.get(pe).map(|v| v.unwrap_or(NULL));

        let mut shared: VecDeque<&PathElement> = rhs_pes
            .iter()
            .filter(|pe| observed_lhs.contains_key(*pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
        let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
        let (l_len, r_len) = (lhs_pes.len(), rhs_pes.len());
        let (mut li, mut ri) = (0, 0);
        while li < l_len || ri < r_len {
            let before = (li, ri);
            if li < l_len && ri < r_len {
                let pe = &lhs_pes[li];
                if *pe == rhs_pes[ri] {
                    merged_rhs.insert(pe);
                    let (lc, rc) = (item(&observed_lhs, pe), item(&observed_rhs, pe));
                    if let Some(v) = self.child(pe.clone(), &list.element, lc, rc)? {
                        out.push(v);
                    }
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < l_len {
                let pe = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    if let Some(v) = self.child(pe.clone(), &list.element, Some(&lhs[li]), None)? {
                        out.push(v);
                    }
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < r_len {
                let pe = &rhs_pes[ri];
                merged_rhs.insert(pe);
                let (lc, rc) = (item(&observed_lhs, pe), item(&observed_rhs, pe));
                if let Some(v) = self.child(pe.clone(), &list.element, lc, rc)? {
                    out.push(v);
                }
                ri += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared.pop_front();
                }
            }
            if (li, ri) == before {
                // Cannot happen with consistent indexes; never loop forever on bad input.
                break;
            }
        }
        Ok((!out.is_empty()).then_some(Value::Array(out)))
    }

    fn map_items(
        &mut self,
        map: &MapType,
        lhs: Option<&Map<String, Value>>,
        rhs: Option<&Map<String, Value>>,
    ) -> Result<Option<Value>, String> {
        let mut out = Map::new();
        if let Some(lhs) = lhs {
            for (k, lv) in lhs {
                let rv = rhs.and_then(|m| m.get(k));
                let pe = PathElement::Field(k.clone());
                if let Some(v) = self.child(pe, map_item_type(map, k), Some(lv), rv)? {
                    out.insert(k.clone(), v);
                }
            }
        }
        if let Some(rhs) = rhs {
            for (k, rv) in rhs {
                if lhs.is_some_and(|m| m.contains_key(k)) {
                    continue;
                }
                let pe = PathElement::Field(k.clone());
                if let Some(v) = self.child(pe, map_item_type(map, k), None, Some(rv))? {
                    out.insert(k.clone(), v);
                }
            }
        }
        Ok((!out.is_empty()).then_some(Value::Object(out)))
    }
}
