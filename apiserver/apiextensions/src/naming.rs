//! CRD names and the NamesAccepted/Established conditions (mirrors apiextensions-apiserver
//! pkg/controller/status/naming_controller.go and pkg/controller/establish).

use serde_json::{Value, json};
use std::collections::HashSet;

/// Whether the CRD has condition `type` with status "True".
pub fn condition_true(crd: &Value, typ: &str) -> bool {
    find_condition(crd, typ)
        .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

/// The condition of type `typ`.
pub fn find_condition<'a>(crd: &'a Value, typ: &str) -> Option<&'a Value> {
    crd.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(typ))
}

/// Result of the naming controller's computation for one CRD.
#[derive(Clone, Debug, PartialEq)]
pub struct NamingResult {
    /// The new `status.acceptedNames`.
    pub accepted_names: Value,
    /// The NamesAccepted condition (without lastTransitionTime).
    pub names_accepted: Value,
    /// The Established condition (without lastTransitionTime unless kept from the CRD).
    pub established: Value,
}

fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn fresh(requested: &str, accepted: &str, used: &HashSet<String>) -> Result<(), String> {
    if requested == accepted || !used.contains(requested) {
        Ok(())
    } else {
        Err(format!("{} is already in use", Value::from(requested)))
    }
}

/// Computes accepted names and conditions for `crd` given every CRD in the cluster
/// (`all`, which may include `crd` itself, as upstream's lister does).
pub fn calculate_names_and_conditions(crd: &Value, all: &[Value]) -> NamingResult {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut resources = HashSet::new();
    let mut kinds = HashSet::new();
    for c in all {
        if c.pointer("/spec/group").and_then(Value::as_str) != Some(group) {
            continue;
        }
        let an = c
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or(Value::Null);
        resources.insert(str_at(&an, "plural").to_string());
        resources.insert(str_at(&an, "singular").to_string());
        for sn in crate::structural::string_list(an.get("shortNames")) {
            resources.insert(sn);
        }
        kinds.insert(str_at(&an, "kind").to_string());
        kinds.insert(str_at(&an, "listKind").to_string());
    }
    let requested = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let accepted = crd
        .pointer("/status/acceptedNames")
        .cloned()
        .unwrap_or(json!({}));
    let mut new_names = accepted.as_object().cloned().unwrap_or_default();
    let mut status = "Unknown";
    let mut reason = String::new();
    let mut message = String::new();
    let mut fail = |r: &str, m: String, status: &mut &str| {
        *status = "False";
        reason = r.to_string();
        message = m;
    };
    for (k, r, used) in [
        ("plural", "PluralConflict", &resources),
        ("singular", "SingularConflict", &resources),
    ] {
        match fresh(str_at(&requested, k), str_at(&accepted, k), used) {
            Err(m) => fail(r, m, &mut status),
            Ok(()) => {
                new_names.insert(k.into(), Value::from(str_at(&requested, k)));
            }
        }
    }
    let req_short = crate::structural::string_list(requested.get("shortNames"));
    let acc_short = crate::structural::string_list(accepted.get("shortNames"));
    if req_short != acc_short {
        let errs: Vec<String> = req_short
            .iter()
            .filter(|sn| !acc_short.contains(sn))
            .filter_map(|sn| fresh(sn, "", &resources).err())
            .collect();
        if errs.is_empty() {
            new_names.insert("shortNames".into(), Value::from(req_short));
        } else if errs.len() == 1 {
            fail("ShortNamesConflict", errs[0].clone(), &mut status);
        } else {
            fail(
                "ShortNamesConflict",
                format!("[{}]", errs.join(", ")),
                &mut status,
            );
        }
    }
    for (k, r) in [("kind", "KindConflict"), ("listKind", "ListKindConflict")] {
        match fresh(str_at(&requested, k), str_at(&accepted, k), &kinds) {
            Err(m) => fail(r, m, &mut status),
            Ok(()) => {
                new_names.insert(k.into(), Value::from(str_at(&requested, k)));
            }
        }
    }
    match requested.get("categories") {
        Some(c) => new_names.insert("categories".into(), c.clone()),
        None => new_names.remove("categories"),
    };
    if status == "Unknown" {
        status = "True";
        reason = "NoConflicts".into();
        message = "no conflicts found".into();
    }
    let names_accepted =
        json!({"type": "NamesAccepted", "status": status, "reason": reason, "message": message});
    let mut established = find_condition(crd, "Established")
        .cloned()
        .unwrap_or_else(|| {
            json!({"type": "Established", "status": "False", "reason": "NotAccepted",
            "message": "not all names are accepted"})
        });
    if established.get("status").and_then(Value::as_str) != Some("True") && status == "True" {
        established = json!({"type": "Established", "status": "False", "reason": "Installing",
            "message": "the initial names have been accepted"});
    }
    NamingResult {
        accepted_names: Value::Object(new_names),
        names_accepted,
        established,
    }
}

/// The Established=True condition the establishing controller sets once names are accepted.
pub fn established_condition() -> Value {
    json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
        "message": "the initial names have been accepted"})
}

/// Sets (replaces) a condition in `status.conditions`, keeping `lastTransitionTime` when the
/// status did not change and stamping `now` otherwise.
pub fn set_condition(crd: &mut Value, mut cond: Value, now: &str) {
    let typ = str_at(&cond, "type").to_string();
    let old = find_condition(crd, &typ).cloned();
    let ltt = match &old {
        Some(o)
            if o.get("status") == cond.get("status") && o.get("lastTransitionTime").is_some() =>
        {
            o["lastTransitionTime"].clone()
        }
        _ => Value::from(now),
    };
    if let Some(m) = cond.as_object_mut() {
        m.insert("lastTransitionTime".into(), ltt);
    }
    let Some(root) = crd.as_object_mut() else {
        return;
    };
    let status = root.entry("status").or_insert_with(|| json!({}));
    if !status.is_object() {
        *status = json!({});
    }
    let conds = status
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    if let Some(Value::Array(list)) = conds {
        match list.iter_mut().find(|c| str_at(c, "type") == typ) {
            Some(c) => *c = cond,
            None => list.push(cond),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(name: &str, plural: &str, kind: &str, accepted: bool) -> Value {
        let names = json!({"plural": plural, "singular": plural.trim_end_matches('s'),
            "kind": kind, "listKind": format!("{kind}List"), "shortNames": ["ct"]});
        json!({"metadata": {"name": name}, "spec": {"group": "stable.example.com", "names": names},
            "status": {"acceptedNames": if accepted { names.clone() } else { json!({"plural": "", "kind": ""}) }}})
    }

    #[test]
    fn conflicts_and_acceptance() {
        let existing = crd("crontabs.stable.example.com", "crontabs", "CronTab", true);
        let fresh_crd = crd("widgets.stable.example.com", "widgets", "Widget", false);
        let r = calculate_names_and_conditions(&fresh_crd, &[existing.clone(), fresh_crd.clone()]);
        assert_eq!(r.names_accepted["status"], "False");
        assert_eq!(r.names_accepted["reason"], "ShortNamesConflict");
        assert_eq!(r.names_accepted["message"], "\"ct\" is already in use");
        assert_eq!(r.established["reason"], "NotAccepted");
        assert_eq!(r.accepted_names["plural"], "widgets");

        let clash = crd("crontabs2.stable.example.com", "crontabs", "Other", false);
        let r = calculate_names_and_conditions(&clash, std::slice::from_ref(&existing));
        assert_eq!(r.names_accepted["reason"], "ShortNamesConflict");
        assert_eq!(r.accepted_names["kind"], "Other");

        let mut ok = crd("gadgets.stable.example.com", "gadgets", "Gadget", false);
        ok["spec"]["names"]["shortNames"] = json!(["gd"]);
        let r = calculate_names_and_conditions(&ok, &[existing]);
        assert_eq!(r.names_accepted["reason"], "NoConflicts");
        assert_eq!(r.established["reason"], "Installing");
        set_condition(&mut ok, r.names_accepted, "2024-01-01T00:00:00Z");
        set_condition(&mut ok, established_condition(), "2024-01-01T00:00:01Z");
        assert!(condition_true(&ok, "Established"));
        assert!(condition_true(&ok, "NamesAccepted"));
    }
}
