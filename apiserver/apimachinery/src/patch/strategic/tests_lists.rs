//! Strategic merge patch on lists of the small test type: primitive unions and deletion lists,
//! element order with and without `$setElementOrder`, and list errors.

use super::tests::{err, ok};
use super::*;
use serde_json::json;

#[test]
fn new_elements_precede_server_only_elements_without_set_element_order() {
    // Server-only elements are placed after the patch elements unless the server's own order
    // puts them before a known patch element (upstream's mergeSortedSlice).
    assert_eq!(
        ok(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [3]})
        ),
        json!({"mergingIntList": [3, 1, 2]})
    );
    assert_eq!(
        ok(
            json!({"mergingList": [{"name": "a"}, {"name": "b"}]}),
            json!({"mergingList": [{"name": "c"}]})
        ),
        json!({"mergingList": [{"name": "c"}, {"name": "a"}, {"name": "b"}]})
    );
    // With `$setElementOrder` (as kubectl sends) the directive decides.
    assert_eq!(
        ok(
            json!({"mergingList": [{"name": "a"}, {"name": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                   "mergingList": [{"name": "c"}]})
        ),
        json!({"mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
    );
}

#[test]
fn primitive_lists_union_and_keep_order() {
    assert_eq!(
        ok(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]})
        ),
        json!({"mergingIntList": [1, 2, 3]})
    );
    assert_eq!(
        ok(
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]})
        ),
        json!({"mergingIntList": [3, 1, 2]})
    );
    assert_eq!(
        ok(
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]})
        ),
        json!({"mergingIntList": [2, 3, 1]})
    );
    // Duplicates in the patch collapse.
    assert_eq!(
        ok(
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": [1, 1, 1]})
        ),
        json!({"mergingIntList": [1]})
    );
    // Lists without the merge strategy are replaced.
    assert_eq!(
        ok(
            json!({"nonMergingIntList": [1, 2]}),
            json!({"nonMergingIntList": [3]})
        ),
        json!({"nonMergingIntList": [3]})
    );
    assert_eq!(
        ok(
            json!({"nonMergingList": [{"name": "1"}]}),
            json!({"nonMergingList": [{"name": "2", "$patch": "delete"}]})
        ),
        json!({"nonMergingList": [{"name": "2", "$patch": "delete"}]})
    );
}

#[test]
fn delete_from_primitive_list() {
    assert_eq!(
        ok(
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2, 7]})
        ),
        json!({"mergingIntList": [1, 3]})
    );
    // Works on lists without the merge strategy too.
    assert_eq!(
        ok(
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [1]})
        ),
        json!({"nonMergingIntList": [2, 3]})
    );
    // Never creates the list, nor adds the items.
    assert_eq!(
        ok(
            json!({"other": "x"}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]})
        ),
        json!({"other": "x"})
    );
    // Combined with additions.
    assert_eq!(
        ok(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [5], "$deleteFromPrimitiveList/mergingIntList": [1]})
        ),
        json!({"mergingIntList": [5, 2]})
    );
    let e = err(
        json!({"mergingIntList": [1]}),
        json!({"$deleteFromPrimitiveList": [1]}),
    );
    assert_eq!(e.message, ERR_PRIMITIVE_LIST);
}

#[test]
fn set_element_order_orders_the_merged_list() {
    let got = ok(
        json!({"mergingList": [{"name": "1"}, {"name": "2"}, {"name": "3"}]}),
        json!({"$setElementOrder/mergingList": [{"name": "3"}, {"name": "1"}, {"name": "2"}],
               "mergingList": [{"name": "1", "value": "a"}]}),
    );
    assert_eq!(
        got,
        json!({"mergingList": [{"name": "3"}, {"name": "1", "value": "a"}, {"name": "2"}]})
    );
    // Items only on the server keep their place relative to the ordered ones.
    let got = ok(
        json!({"mergingList": [{"name": "1", "other": "x"}, {"name": "3"}, {"name": "4"},
                               {"name": "2"}, {"name": "9"}]}),
        json!({"$setElementOrder/mergingList": [{"name": "4"}, {"name": "2"}, {"name": "3"},
                                                {"name": "1"}]}),
    );
    assert_eq!(
        got,
        json!({"mergingList": [{"name": "4"}, {"name": "2"}, {"name": "3"},
                               {"name": "1", "other": "x"}, {"name": "9"}]})
    );
    // Entries of the order list that exist nowhere are ignored.
    let got = ok(
        json!({"mergingIntList": [1, 3]}),
        json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
    );
    assert_eq!(got, json!({"mergingIntList": [3, 1]}));
}

#[test]
fn set_element_order_with_additions_and_deletions() {
    let got = ok(
        json!({"mergingList": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
        json!({"$setElementOrder/mergingList": [{"name": "c"}, {"name": "new"}, {"name": "a"}],
               "mergingList": [{"name": "new"}, {"name": "b", "$patch": "delete"}]}),
    );
    assert_eq!(
        got,
        json!({"mergingList": [{"name": "c"}, {"name": "new"}, {"name": "a"}]})
    );
    let got = ok(
        json!({"mergingIntList": [1, 2, 3]}),
        json!({"$setElementOrder/mergingIntList": [3, 4, 1],
               "mergingIntList": [4],
               "$deleteFromPrimitiveList/mergingIntList": [2]}),
    );
    assert_eq!(got, json!({"mergingIntList": [3, 4, 1]}));
    // A list that only the patch has is created, in the directive's order.
    let got = ok(
        json!({}),
        json!({"$setElementOrder/mergingList": [{"name": "2"}, {"name": "1"}],
               "mergingList": [{"name": "2"}, {"name": "1"}]}),
    );
    assert_eq!(got, json!({"mergingList": [{"name": "2"}, {"name": "1"}]}));
}

#[test]
fn set_element_order_errors() {
    let e = err(
        json!({"mergingList": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}),
        json!({"$setElementOrder/mergingList": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
               "mergingList": [{"name": "3"}, {"name": "1"}]}),
    );
    assert!(
        e.message.contains("doesn't match $setElementOrder list"),
        "{}",
        e.message
    );
    assert_eq!(e.reason, Reason::BadRequest);
    let e = err(
        json!({"mergingIntList": [1]}),
        json!({"$setElementOrder/mergingIntList": [2, 1], "mergingIntList": [1, 2]}),
    );
    assert!(e.message.contains("doesn't match"), "{}", e.message);
    let e = err(json!({}), json!({"$setElementOrder": [1]}));
    assert_eq!(e.message, ERR_SET_ORDER);
    let e = err(json!({}), json!({"$setElementOrder/mergingIntList": "x"}));
    assert_eq!(
        e.message,
        "expected a []interface {}, but received a string"
    );
}

#[test]
fn list_shape_errors() {
    let e = err(
        json!({"mergingIntList": [[1]]}),
        json!({"mergingIntList": [[2]]}),
    );
    assert_eq!(e.reason, Reason::Invalid);
    assert_eq!(e.message, ERR_NO_LIST_OF_LISTS);
    let e = err(
        json!({"mergingIntList": [1]}),
        json!({"mergingIntList": ["a"]}),
    );
    assert_eq!(e.message, "list element types are not identical: [[1] [a]]");
    // A list of maps needs a merge key to be merged.
    let e = err(
        json!({"nested": {"mergingIntList": [{"a": 1}]}}),
        json!({"nested": {"mergingIntList": [{"a": 2}]}}),
    );
    assert!(
        e.message
            .starts_with("cannot merge lists without merge key for "),
        "{}",
        e.message
    );
}
