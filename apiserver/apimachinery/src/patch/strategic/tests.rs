//! Strategic merge patch behaviour on a small test type (the behaviours of upstream's
//! strategicpatch/patch_test.go, with our own cases).

use super::*;
use crate::schema::{FieldMeta, Shape, TypeGraph};
use serde_json::json;

const ITEM: &str = "test.Item";
const RETAIN: &str = "test.RetainItem";

struct TestSchema {
    graph: TypeGraph,
    meta: Vec<(&'static str, &'static str, FieldMeta)>,
}

fn meta(strategy: &'static str, key: Option<&'static str>) -> FieldMeta {
    FieldMeta {
        patch_strategy: Some(strategy),
        patch_merge_key: key,
        list_type: None,
        list_map_keys: &[],
        map_type: None,
    }
}

fn items_of(def: &str) -> Shape {
    Shape::Array(Box::new(Shape::Ref(def.into())))
}

fn scalars() -> Shape {
    Shape::Array(Box::new(Shape::Scalar))
}

/// `test.Item`: name/value/other scalars, a merging list of items keyed by name, a non-merging
/// list, merging and non-merging int lists, a string map, a replace-strategy object, a
/// retainKeys object and a `merge,retainKeys` list.
fn schema() -> TestSchema {
    let mut graph = TypeGraph::default();
    graph.insert_definition(
        ITEM,
        vec![
            ("name", Shape::Scalar),
            ("value", Shape::Scalar),
            ("other", Shape::Scalar),
            ("mergingList", items_of(ITEM)),
            ("nonMergingList", items_of(ITEM)),
            ("mergingIntList", scalars()),
            ("nonMergingIntList", scalars()),
            ("simpleMap", Shape::Map(Box::new(Shape::Scalar))),
            ("itemMap", Shape::Map(Box::new(Shape::Ref(ITEM.into())))),
            ("replacingItem", Shape::Object),
            ("retainKeysMap", Shape::Ref(RETAIN.into())),
            ("retainKeysMergingList", items_of(ITEM)),
            ("nested", Shape::Ref(ITEM.into())),
        ],
    );
    graph.insert_definition(
        RETAIN,
        vec![
            ("name", Shape::Scalar),
            ("value", Shape::Scalar),
            ("other", Shape::Scalar),
            ("simpleMap", Shape::Map(Box::new(Shape::Scalar))),
            ("mergingIntList", scalars()),
            ("mergingList", items_of(ITEM)),
            ("nonMergingList", items_of(ITEM)),
        ],
    );
    let meta = vec![
        (ITEM, "mergingList", meta("merge", Some("name"))),
        (ITEM, "mergingIntList", meta("merge", None)),
        (ITEM, "replacingItem", meta("replace", None)),
        (ITEM, "retainKeysMap", meta("retainKeys", None)),
        (
            ITEM,
            "retainKeysMergingList",
            meta("merge,retainKeys", Some("name")),
        ),
        (RETAIN, "mergingIntList", meta("merge", None)),
        (RETAIN, "mergingList", meta("merge", Some("name"))),
    ];
    TestSchema { graph, meta }
}

impl PatchSchema for TestSchema {
    fn field_meta(&self, definition: &str, field: &str) -> Option<&FieldMeta> {
        self.meta
            .iter()
            .find(|(d, f, _)| *d == definition && *f == field)
            .map(|(_, _, m)| m)
    }
    fn graph(&self) -> &TypeGraph {
        &self.graph
    }
}

fn apply(original: Value, patch: Value) -> Result<Value, ApiError> {
    let patch = serde_json::to_vec(&patch).unwrap();
    apply_strategic_merge_patch_with(&original, &patch, ITEM, &schema())
}

pub(super) fn ok(original: Value, patch: Value) -> Value {
    apply(original, patch).unwrap()
}

pub(super) fn err(original: Value, patch: Value) -> ApiError {
    apply(original, patch).unwrap_err()
}

#[test]
fn maps_merge_recursively_and_null_deletes() {
    let got = ok(
        json!({"name": "a", "value": "1", "simpleMap": {"k1": "x", "k2": "y"}}),
        json!({"value": null, "other": "o", "simpleMap": {"k1": null, "k3": "z"}}),
    );
    assert_eq!(
        got,
        json!({"name": "a", "other": "o", "simpleMap": {"k2": "y", "k3": "z"}})
    );
    // A null for an absent key is dropped, not stored; nulls inside new values are discarded too.
    let got = ok(
        json!({"name": "a"}),
        json!({"missing": null, "nested": {"name": "n", "value": null}}),
    );
    assert_eq!(got, json!({"name": "a", "nested": {"name": "n"}}));
    // Empty patches and a null patch change nothing.
    assert_eq!(ok(json!({"name": "a"}), json!({})), json!({"name": "a"}));
    assert_eq!(ok(json!({"name": "a"}), Value::Null), json!({"name": "a"}));
}

#[test]
fn type_change_takes_the_patch_value() {
    let got = ok(
        json!({"value": {"a": 1}, "other": [1, 2]}),
        json!({"value": "now a string", "other": {"k": [{"$patch": "delete"}, 3]}}),
    );
    assert_eq!(got, json!({"value": "now a string", "other": {"k": [3]}}));
}

#[test]
fn merging_list_merges_by_key_and_appends_new_items() {
    let got = ok(
        json!({"mergingList": [{"name": "1", "value": "a"}, {"name": "2", "value": "b"}]}),
        json!({"mergingList": [{"name": "2", "other": "x"}, {"name": "3", "value": "c"}]}),
    );
    assert_eq!(
        got,
        json!({"mergingList": [
            {"name": "1", "value": "a"},
            {"name": "2", "value": "b", "other": "x"},
            {"name": "3", "value": "c"}
        ]})
    );
}

#[test]
fn merging_list_keeps_patch_order_then_server_order() {
    // Patch items keep the patch's relative order; server-only items slot in by server order.
    let got = ok(
        json!({"mergingList": [{"name": "1"}, {"name": "2", "value": "b"}, {"name": "3"}]}),
        json!({"mergingList": [{"name": "3", "value": "c"}, {"name": "1", "value": "a"}]}),
    );
    assert_eq!(
        got,
        json!({"mergingList": [
            {"name": "2", "value": "b"},
            {"name": "3", "value": "c"},
            {"name": "1", "value": "a"}
        ]})
    );
}

#[test]
fn merging_list_nested_fields_merge_with_their_own_metadata() {
    let got = ok(
        json!({"mergingList": [{"name": "1", "mergingList": [{"name": "x", "value": "1"}],
                                "nonMergingList": [{"name": "p"}, {"name": "q"}]}]}),
        json!({"mergingList": [{"name": "1", "mergingList": [{"name": "y"}],
                                "nonMergingList": [{"name": "r"}]}]}),
    );
    assert_eq!(
        got,
        json!({"mergingList": [{"name": "1",
            "mergingList": [{"name": "y"}, {"name": "x", "value": "1"}],
            "nonMergingList": [{"name": "r"}]}]})
    );
}

#[test]
fn delete_directive_removes_every_matching_element() {
    let got = ok(
        json!({"mergingList": [{"name": "1"}, {"name": "1"}, {"name": "2", "value": "v"},
                               {"name": "3"}]}),
        json!({"mergingList": [{"name": "1", "$patch": "delete"},
                               {"name": "3", "$patch": "delete"},
                               {"name": "9", "$patch": "delete"}]}),
    );
    assert_eq!(got, json!({"mergingList": [{"name": "2", "value": "v"}]}));
    // Deleting and adding in one patch; without `$setElementOrder` an element the server does
    // not know goes before the server-only ones.
    let got = ok(
        json!({"mergingList": [{"name": "1"}, {"name": "2"}]}),
        json!({"mergingList": [{"name": "1", "$patch": "delete"}, {"name": "4"}]}),
    );
    assert_eq!(got, json!({"mergingList": [{"name": "4"}, {"name": "2"}]}));
}

#[test]
fn replace_directive_in_a_list() {
    let got = ok(
        json!({"mergingList": [{"name": "1", "value": "a"}, {"name": "2"}]}),
        json!({"mergingList": [{"name": "5", "value": "e"}, {"$patch": "replace"}]}),
    );
    assert_eq!(got, json!({"mergingList": [{"name": "5", "value": "e"}]}));
    let got = ok(
        json!({"mergingList": [{"name": "1"}]}),
        json!({"mergingList": [{"$patch": "replace"}]}),
    );
    assert_eq!(got, json!({"mergingList": []}));
}

#[test]
fn element_directive_errors() {
    let e = err(
        json!({"mergingList": [{"name": "1"}]}),
        json!({"mergingList": [{"$patch": "merge", "name": "1"}]}),
    );
    assert_eq!(
        e.message,
        "merging lists cannot yet be specified in the patch"
    );
    assert_eq!(e.reason, Reason::BadRequest);
    let e = err(
        json!({"mergingList": [{"name": "1"}]}),
        json!({"mergingList": [{"$patch": "delete", "value": "1"}]}),
    );
    assert_eq!(
        e.message,
        "map: map[$patch:delete value:1] does not contain declared merge key: name"
    );
    let e = err(
        json!({"mergingList": [{"name": "1"}]}),
        json!({"mergingList": [{"$patch": "bogus", "name": "1"}]}),
    );
    assert_eq!(
        e.message,
        "unknown patch type: bogus in map: map[$patch:bogus name:1]"
    );
    let e = err(
        json!({"mergingList": [{"name": "1", "value": "a"}]}),
        json!({"mergingList": [{"value": "b"}]}),
    );
    assert!(
        e.message
            .contains("does not contain declared merge key: name"),
        "{}",
        e.message
    );
}

#[test]
fn map_directives() {
    let original = json!({"name": "a", "value": "b", "simpleMap": {"k1": "1", "k2": "2"}});
    assert_eq!(
        ok(
            original.clone(),
            json!({"simpleMap": {"$patch": "replace", "k3": "3"}})
        ),
        json!({"name": "a", "value": "b", "simpleMap": {"k3": "3"}})
    );
    assert_eq!(
        ok(original.clone(), json!({"simpleMap": {"$patch": "delete"}})),
        json!({"name": "a", "value": "b", "simpleMap": {}})
    );
    // At the root the whole object is replaced.
    assert_eq!(
        ok(original.clone(), json!({"$patch": "replace", "other": "x"})),
        json!({"other": "x"})
    );
    assert_eq!(ok(original.clone(), json!({"$patch": "delete"})), json!({}));
    let e = err(original, json!({"simpleMap": {"$patch": "merge"}}));
    assert_eq!(
        e.message,
        "unknown patch type: merge in map: map[$patch:merge]"
    );
    // A new value carrying a directive map is dropped rather than stored.
    assert_eq!(
        ok(
            json!({"name": "a"}),
            json!({"nested": {"$patch": "delete"}})
        ),
        json!({"name": "a"})
    );
}

#[test]
fn replace_strategy_field_is_not_merged() {
    let got = ok(
        json!({"replacingItem": {"a": 1, "b": {"c": 2}}}),
        json!({"replacingItem": {"b": {"d": 3}}}),
    );
    assert_eq!(got, json!({"replacingItem": {"b": {"d": 3}}}));
}

#[test]
fn maps_of_definitions_merge_their_values() {
    let got = ok(
        json!({"itemMap": {"x": {"name": "x", "mergingList": [{"name": "1"}]}}}),
        json!({"itemMap": {"x": {"mergingList": [{"name": "2"}]}, "y": {"name": "y"}}}),
    );
    assert_eq!(
        got,
        json!({"itemMap": {
            "x": {"name": "x", "mergingList": [{"name": "2"}, {"name": "1"}]},
            "y": {"name": "y"}
        }})
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let got = ok(
        json!({"retainKeysMap": {"name": "n", "value": "v", "other": "o"}}),
        json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "other": "p"}}),
    );
    assert_eq!(got, json!({"retainKeysMap": {"name": "n", "other": "p"}}));
    // Nested lists in retained fields still merge by their own strategy.
    let got = ok(
        json!({"retainKeysMap": {"value": "v", "mergingIntList": [1, 2]}}),
        json!({"retainKeysMap": {"$retainKeys": ["mergingIntList"], "mergingIntList": [3]}}),
    );
    assert_eq!(got, json!({"retainKeysMap": {"mergingIntList": [3, 1, 2]}}));
    // Without the directive a retainKeys field merges normally.
    let got = ok(
        json!({"retainKeysMap": {"name": "n"}}),
        json!({"retainKeysMap": {"value": "v"}}),
    );
    assert_eq!(got, json!({"retainKeysMap": {"name": "n", "value": "v"}}));
}

#[test]
fn retain_keys_in_list_elements() {
    let got = ok(
        json!({"retainKeysMergingList": [
            {"name": "1", "value": "a", "other": "b"},
            {"name": "2", "value": "c"}
        ]}),
        json!({"retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "1",
                                          "value": "z"}]}),
    );
    assert_eq!(
        got,
        json!({"retainKeysMergingList": [{"name": "1", "value": "z"}, {"name": "2", "value": "c"}]})
    );
}

#[test]
fn retain_keys_errors() {
    // Every field the patch sets must be retained; null and directive keys are exempt.
    let e = err(
        json!({"retainKeysMap": {"name": "n"}}),
        json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "v"}}),
    );
    assert_eq!(e.message, ERR_RETAIN_KEYS);
    assert_eq!(e.reason, Reason::BadRequest);
    let e = err(
        json!({"retainKeysMap": {"name": "n"}}),
        json!({"retainKeysMap": {"$retainKeys": "name"}}),
    );
    assert_eq!(e.message, ERR_RETAIN_KEYS);
    let got = ok(
        json!({"retainKeysMap": {"name": "n", "value": "v"}}),
        json!({"retainKeysMap": {"$retainKeys": ["name"], "value": null}}),
    );
    assert_eq!(got, json!({"retainKeysMap": {"name": "n"}}));
}

#[test]
fn malformed_patches_are_bad_requests() {
    let original = json!({"name": "a"});
    let e = apply_strategic_merge_patch_with(&original, b"{not json", ITEM, &schema()).unwrap_err();
    assert_eq!(e.reason, Reason::BadRequest);
    let e = apply_strategic_merge_patch_with(&original, b"[1]", ITEM, &schema()).unwrap_err();
    assert_eq!(
        e.message,
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    );
}

#[test]
fn unknown_definition_behaves_like_a_merge_patch() {
    let original = json!({"a": {"b": 1, "c": [1, 2]}, "l": [{"name": "x"}]});
    let patch = json!({"a": {"b": null, "c": [3]}, "l": [{"name": "y"}], "d": true});
    let got = apply_strategic_merge_patch_with(
        &original,
        &serde_json::to_vec(&patch).unwrap(),
        "test.NoSuchType",
        &schema(),
    )
    .unwrap();
    assert_eq!(
        got,
        json!({"a": {"c": [3]}, "l": [{"name": "y"}], "d": true})
    );
}
