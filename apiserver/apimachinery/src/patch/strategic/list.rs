//! Merging a patch list into an original list: merge-by-key lists of maps with `$patch` element
//! directives, unions and deletion lists of primitives, and the result's element order
//! (mirrors strategicpatch/patch.go: mergeSliceHandler, mergeSlice, mergeSliceWith(out)SpecialElements,
//! deleteFromSlice, normalizeElementOrder, mergeSortedSlice, sliceElementType).

use serde_json::Value;

use super::lookup::{Ctx, FieldPatch, Node};
use super::merge::merge_map;
use super::{
    DELETE, DIRECTIVE, Kind, MERGE, REPLACE, bad, bad_arg_type, bad_patch_type, go_fmt_list,
    list_of_lists, no_merge_key,
};
use crate::error::ApiError;

/// A merged list, and the original list as upstream sees it afterwards.
///
/// Upstream merges lists in place: deleting elements shifts the original's backing array and new
/// elements are appended into the freed slots, so the original list that `$setElementOrder`
/// ordering later consults (by position) reads the survivors, then the appended elements, then
/// stale leftovers. `server_view` reproduces that view, which decides where server-only
/// elements land.
pub(crate) struct MergedList {
    pub items: Vec<Value>,
    pub server_view: Vec<Value>,
}

/// Merges two lists of a field with the field's metadata; deletion lists
/// (`$deleteFromPrimitiveList`) always merge, lists without the `merge` strategy are replaced.
pub(crate) fn merge_slice_handler(
    ctx: &Ctx<'_>,
    original: Vec<Value>,
    patch: Vec<Value>,
    items: &Node,
    meta: &FieldPatch,
    delete_list: bool,
) -> Result<MergedList, ApiError> {
    if meta.strategy == MERGE || delete_list {
        merge_slice(ctx, original, patch, items, &meta.merge_key, delete_list)
    } else {
        Ok(MergedList {
            items: patch,
            server_view: original,
        })
    }
}

fn merge_slice(
    ctx: &Ctx<'_>,
    original: Vec<Value>,
    patch: Vec<Value>,
    items: &Node,
    merge_key: &str,
    delete_list: bool,
) -> Result<MergedList, ApiError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(MergedList {
            items: Vec::new(),
            server_view: original,
        });
    }
    let kind = slice_element_kind(&[&original, &patch])?;

    let (merged, server_order, patch, server_view) = if kind != Kind::Object {
        if delete_list {
            let items = original
                .iter()
                .filter(|v| !patch.contains(v))
                .cloned()
                .collect();
            return Ok(MergedList {
                items,
                server_view: original,
            });
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.contains(v) {
                merged.push(v.clone());
            }
        }
        (merged, original.clone(), patch, original)
    } else {
        if merge_key.is_empty() {
            return Err(bad(format!(
                "cannot merge lists without merge key for {}",
                items.name()
            )));
        }
        let directed = apply_element_directives(original, patch, merge_key)?;
        let server_order = directed.original.clone();
        let merged = merge_by_key(ctx, directed.original, &directed.patch, merge_key, items)?;
        let mut view = directed.backing;
        if !directed.replaced {
            // Appended elements land in the slots the deletions freed.
            for (slot, item) in view.iter_mut().zip(merged.iter()).skip(server_order.len()) {
                *slot = item.clone();
            }
        }
        (merged, server_order, directed.patch, view)
    };

    let (in_patch, server_only) = partition_by_presence(merged, &patch, merge_key)?;
    let items = normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        merge_key,
        kind,
    )?;
    Ok(MergedList { items, server_view })
}

/// The outcome of a list's `$patch` elements.
struct Directed {
    /// The original without deleted elements (or the patch's elements after a `replace`).
    original: Vec<Value>,
    /// The patch elements without directives (empty after a `replace`).
    patch: Vec<Value>,
    /// The original's slots after the deletions shifted them (same length as the original).
    backing: Vec<Value>,
    replaced: bool,
}

/// Handles `$patch` elements of a list of maps: `delete` removes the original entries with the
/// element's key, `replace` makes the other patch elements the whole list.
fn apply_element_directives(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<Directed, ApiError> {
    let mut backing = original;
    let mut len = backing.len();
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = &item else {
            return Err(bad_arg_type(Kind::Object, &item));
        };
        let Some(directive) = m.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE) => {
                let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                // Remove every match, shifting the tail left (the last slot keeps its value).
                while let Some(i) = find_by_key(&backing[..len], merge_key, value)? {
                    for p in i..len - 1 {
                        backing[p] = backing[p + 1].clone();
                    }
                    len -= 1;
                }
            }
            // Keep going: the remaining directive elements still have to be dropped.
            Some(REPLACE) => replace = true,
            Some(MERGE) => {
                return Err(bad("merging lists cannot yet be specified in the patch"));
            }
            _ => return Err(bad_patch_type(directive, m)),
        }
    }
    let survivors = backing[..len].to_vec();
    Ok(if replace {
        Directed {
            original: plain,
            patch: Vec::new(),
            backing,
            replaced: true,
        }
    } else {
        Directed {
            original: survivors,
            patch: plain,
            backing,
            replaced: false,
        }
    })
}

/// Merges each patch element into the original element with the same merge key value, or appends
/// it when there is none.
fn merge_by_key(
    ctx: &Ctx<'_>,
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    items: &Node,
) -> Result<Vec<Value>, ApiError> {
    for item in patch {
        let Value::Object(m) = item else {
            return Err(bad_arg_type(Kind::Object, item));
        };
        let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
        match find_by_key(&original, merge_key, value)? {
            Some(i) => {
                let Value::Object(orig) = original[i].take() else {
                    continue;
                };
                original[i] = Value::Object(merge_map(ctx, orig, m.clone(), items)?);
            }
            None => original.push(item.clone()),
        }
    }
    Ok(original)
}

/// The index of the first map whose `key` equals `value`; a non-map entry is an error.
fn find_by_key(list: &[Value], key: &str, value: &Value) -> Result<Option<usize>, ApiError> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(bad(format!("value for key {i} is not a map")));
        };
        if m.get(key) == Some(value) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits `items` into those present in `by` (maps compared by merge key, primitives by value)
/// and the rest, each in their order in `items`.
pub(crate) fn partition_by_presence(
    items: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), ApiError> {
    let mut present = Vec::with_capacity(items.len());
    let mut absent = Vec::new();
    for item in items {
        let found = if merge_key.is_empty() {
            by.contains(&item)
        } else {
            let Value::Object(m) = &item else {
                return Err(bad_arg_type(Kind::Object, &item));
            };
            let value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
            find_by_key(by, merge_key, value)?.is_some()
        };
        if found {
            present.push(item);
        } else {
            absent.push(item);
        }
    }
    Ok((present, absent))
}

/// Orders `patch` items by `patch_order` and `server_only` items by `server_order`, then
/// interleaves them, keeping both relative orders and, where both are known, the server's.
pub(crate) fn normalize_element_order(
    patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, ApiError> {
    let patch = sort_by_order(patch, patch_order, merge_key, kind)?;
    let server_only = sort_by_order(server_only, server_order, merge_key, kind)?;
    Ok(merge_sorted(
        server_only,
        patch,
        server_order,
        merge_key,
        kind,
    ))
}

/// Stable-sorts `items` by their position in `order`; for maps, elements marked
/// `$patch: delete` go last.
fn sort_by_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, ApiError> {
    let (mut items, deleted) = if kind == Kind::Object {
        for item in items.iter().chain(order.iter()) {
            let Value::Object(m) = item else {
                return Err(bad_arg_type(Kind::Object, item));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
        items
            .into_iter()
            .partition(|v| v.get(DIRECTIVE).and_then(Value::as_str) != Some(DELETE))
    } else {
        (items, Vec::new())
    };
    // Unknown positions sort first, as upstream's comparator treats them as smaller.
    items.sort_by_key(|v| index_of(order, v, merge_key, kind).map_or(-1, |i| i as i64));
    items.extend(deleted);
    Ok(items)
}

/// Position of `item` in `list`: by merge key value for maps, by value otherwise.
fn index_of(list: &[Value], item: &Value, merge_key: &str, kind: Kind) -> Option<usize> {
    if kind == Kind::Object {
        let wanted = key_value(item, merge_key);
        list.iter().position(|v| key_value(v, merge_key) == wanted)
    } else {
        list.iter().position(|v| v == item)
    }
}

fn key_value<'v>(v: &'v Value, merge_key: &str) -> Option<&'v Value> {
    v.as_object()?.get(merge_key)
}

/// Inserts each `left` (server-only) item into `right` (patch) before the first right item that
/// comes after it in `server_order`; both inputs keep their relative order.
fn merge_sorted(
    left: Vec<Value>,
    right: Vec<Value>,
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Vec<Value> {
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, kind),
                    index_of(server_order, r, merge_key, kind),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// The common kind of all elements of the lists; lists of lists and mixed kinds are errors.
pub(crate) fn slice_element_kind(lists: &[&[Value]]) -> Result<Kind, ApiError> {
    let mut kind: Option<Kind> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = Kind::of(v);
        match kind {
            None if k == Kind::Array => return Err(list_of_lists()),
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let all: Vec<String> = lists.iter().map(|l| go_fmt_list(l)).collect();
                return Err(bad(format!(
                    "list element types are not identical: [{}]",
                    all.join(" ")
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| bad("no elements in any of the given slices"))
}
