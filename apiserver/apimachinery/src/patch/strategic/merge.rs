//! Merging a patch map into an original map: `$patch` directives on maps, `$retainKeys`,
//! `$setElementOrder/<field>`, `$deleteFromPrimitiveList/<field>`, null deletion and recursion
//! (mirrors strategicpatch/patch.go: mergeMap, applyRetainKeysDirective, mergePatchIntoOriginal,
//! removeDirectives, discardNullValuesFromPatch).

use serde_json::{Map, Value};

use super::list::{
    merge_slice_handler, normalize_element_order, partition_by_presence, slice_element_kind,
};
use super::lookup::{Ctx, Node};
use super::{
    DELETE, DELETE_PRIMITIVE_PREFIX, DIRECTIVE, ERR_PRIMITIVE_LIST, ERR_RETAIN_KEYS, ERR_SET_ORDER,
    Kind, REPLACE, RETAIN_KEYS, SET_ORDER_PREFIX, bad, bad_arg_type, bad_patch_type,
};
use crate::error::ApiError;

/// Merges `patch` into `original`, both maps of the value described by `node`.
pub(crate) fn merge_map(
    ctx: &Ctx<'_>,
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    node: &Node,
) -> Result<Map<String, Value>, ApiError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            // The patch replaces the map (only the marker itself is dropped).
            Some(REPLACE) => {
                patch.shift_remove(DIRECTIVE);
                Ok(patch)
            }
            Some(DELETE) => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(ctx, &mut original, &mut patch, node)?;

    for (patch_key, patch_value) in patch {
        let (key, delete_list) = if patch_key.starts_with(DELETE_PRIMITIVE_PREFIX) {
            (
                extract_key(&patch_key, DELETE_PRIMITIVE_PREFIX)?.to_string(),
                true,
            )
        } else {
            (patch_key, false)
        };

        // null deletes the key (and is never kept in the result).
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }

        let original_kind = original.get(&key).map(Kind::of);
        match original_kind {
            // Absent from the original, or of another type: the patch value is taken as is
            // (without nulls and directives); deletion lists then have nothing to act on.
            None => {
                if !delete_list {
                    set_from_patch(&mut original, key, patch_value);
                }
            }
            Some(kind) if kind != Kind::of(&patch_value) => {
                if !delete_list {
                    set_from_patch(&mut original, key, patch_value);
                }
            }
            Some(Kind::Object) => {
                let (meta, child) = ctx.lookup_struct(node, &key)?;
                let Some(slot) = original.get_mut(&key) else {
                    continue;
                };
                let (Value::Object(orig_map), Value::Object(patch_map)) =
                    (slot.take(), patch_value)
                else {
                    continue;
                };
                *slot = if meta.strategy == REPLACE {
                    Value::Object(patch_map)
                } else {
                    Value::Object(merge_map(ctx, orig_map, patch_map, &child)?)
                };
            }
            Some(Kind::Array) => {
                let (meta, items) = ctx.lookup_slice(node, &key)?;
                let Some(slot) = original.get_mut(&key) else {
                    continue;
                };
                let (Value::Array(orig_list), Value::Array(patch_list)) =
                    (slot.take(), patch_value)
                else {
                    continue;
                };
                let merged =
                    merge_slice_handler(ctx, orig_list, patch_list, &items, &meta, delete_list)?;
                *slot = Value::Array(merged.items);
            }
            Some(_) => match remove_directives(patch_value) {
                Some(v) => {
                    original.insert(key, v);
                }
                None => {
                    original.shift_remove(&key);
                }
            },
        }
    }
    Ok(original)
}

fn set_from_patch(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_null_values(&mut value);
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.shift_remove(&key);
        }
    }
}

/// `$setElementOrder/x` -> `x`; anything else with the prefix is a malformed patch.
pub(crate) fn extract_key<'k>(key: &'k str, prefix: &str) -> Result<&'k str, ApiError> {
    match key.split_once('/') {
        Some((p, rest)) if p == prefix => Ok(rest),
        _ if prefix == DELETE_PRIMITIVE_PREFIX => Err(bad(ERR_PRIMITIVE_LIST)),
        _ => Err(bad(ERR_SET_ORDER)),
    }
}

/// `$retainKeys`: keeps only the listed keys of the original; every non-null key the patch sets
/// must be listed.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad(ERR_RETAIN_KEYS));
    };
    let listed = |k: &str| retain.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null() || k.starts_with(DELETE_PRIMITIVE_PREFIX) || k.starts_with(SET_ORDER_PREFIX)
        {
            continue;
        }
        if !listed(k) {
            return Err(bad(ERR_RETAIN_KEYS));
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges the field's list (if the patch has it) and orders the result
/// by the directive, then by the patch, then by the original.
fn merge_ordered_lists(
    ctx: &Ctx<'_>,
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    node: &Node,
) -> Result<(), ApiError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ORDER_PREFIX))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.shift_remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type(Kind::Array, &order));
        };
        let field = extract_key(&key, SET_ORDER_PREFIX)?.to_string();
        let orig_list = list_field(original, &field)?;
        let patch_list = list_field(patch, &field)?;
        let (meta, items) = ctx.lookup_slice(node, &field)?;
        validate_order(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            &meta.merge_key,
        )?;

        let patch_items = patch_list.clone().unwrap_or_default();
        // The original as ordering sees it after the merge (see `MergedList`).
        let (merged, server_order) = match (orig_list, patch_list) {
            (Some(o), None) => (o.clone(), o),
            (None, Some(p)) => match remove_directives(Value::Array(p)) {
                Some(Value::Array(v)) => (v, Vec::new()),
                _ => continue,
            },
            (Some(o), Some(p)) => {
                let m = merge_slice_handler(ctx, o, p, &items, &meta, false)?;
                (m.items, m.server_view)
            }
            (None, None) => continue,
        };

        let (in_order, server_only) = partition_by_presence(merged, &order, &meta.merge_key)?;
        let kind = slice_element_kind(&[&server_order, &patch_items])?;
        let both = normalize_element_order(
            in_order,
            server_only,
            &order,
            &server_order,
            &meta.merge_key,
            kind,
        )?;
        original.insert(field.clone(), Value::Array(both));
        patch.shift_remove(&field);
    }
    Ok(())
}

/// The list at `field`, if present; anything else there is a type error.
fn list_field(map: &Map<String, Value>, field: &str) -> Result<Option<Vec<Value>>, ApiError> {
    match map.get(field) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(bad_arg_type(Kind::Array, other)),
    }
}

/// The non-deleted patch items must appear in the `$setElementOrder` list, in the same order.
fn validate_order(patch: &[Value], order: &[Value], merge_key: &str) -> Result<(), ApiError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch.len());
    for item in patch {
        if merge_key.is_empty() {
            items.push(item);
            continue;
        }
        let Value::Object(m) = item else {
            return Err(bad_arg_type(Kind::Object, item));
        };
        if m.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE) {
            items.push(item);
        }
    }
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if items[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            pi += 1;
            continue;
        }
        if merge_key_equal(items[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() && oi >= order.len() {
        return Err(bad(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ORDER_PREFIX} list:\n{}\n",
            super::go_fmt_list(patch),
            super::go_fmt_list(order)
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool, ApiError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        let not_map = if left.is_object() { right } else { left };
        return Err(bad_arg_type(Kind::Object, not_map));
    };
    let lk = l
        .get(merge_key)
        .ok_or_else(|| super::no_merge_key(l, merge_key))?;
    let rk = r
        .get(merge_key)
        .ok_or_else(|| super::no_merge_key(r, merge_key))?;
    Ok(lk == rk)
}

/// Drops maps carrying a `$patch` directive (returns `None` when `value` itself is one), at any
/// depth; everything else is kept.
pub(crate) fn remove_directives(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) => {
            if m.contains_key(DIRECTIVE) {
                return None;
            }
            let kept = m
                .into_iter()
                .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                .collect();
            Some(Value::Object(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Removes null-valued keys from maps at any depth (nulls as list items stay).
fn discard_null_values(value: &mut Value) {
    match value {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_null_values);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_null_values),
        _ => {}
    }
}
