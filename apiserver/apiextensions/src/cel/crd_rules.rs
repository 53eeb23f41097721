//! Compiling a CRD schema node's `x-kubernetes-validations` when the CRD is created or updated:
//! compile errors, `oldSelf` use, and the estimated cost checks per rule (times the number of
//! times the node can occur) and for the whole schema (mirrors apiextensions-apiserver
//! pkg/apis/apiextensions/validation/{validation,cel_validation}.go: the CEL part of
//! `ValidateCustomResourceDefinitionOpenAPISchema`, `CELSchemaContext`, `TotalCost`,
//! `getCostErrorMessage`).

use crate::cel::compile::compile_rule;
use crate::cel::decl::{decl_type, max_cardinality};
use crate::structural::{Structural, ValidationRule};
use apiserver_apimachinery::{FieldError, FieldPath};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::rc::Rc;

/// Upstream `StaticEstimatedCostLimit`: the largest estimated cost of one expression.
pub const STATIC_ESTIMATED_COST_LIMIT: u64 = 10_000_000;
/// Upstream `StaticEstimatedCRDCostLimit`: the largest estimated cost of all rules of a schema.
pub const STATIC_ESTIMATED_CRD_COST_LIMIT: u64 = 100_000_000;

/// The estimated cost of all rules of a schema, and the (at most 4) rules contributing most.
#[derive(Debug, Default)]
pub struct TotalCost {
    pub total: u64,
    pub most_expensive: Vec<(FieldPath, u64)>,
}

impl TotalCost {
    fn observe(&mut self, path: FieldPath, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < STATIC_ESTIMATED_CRD_COST_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path, cost));
        self.most_expensive.sort_by_key(|e| std::cmp::Reverse(e.1));
        self.most_expensive.truncate(4);
    }

    /// The errors of a schema whose rules together cost too much (at `openAPIV3Schema`).
    pub fn errors(&self, schema_path: &FieldPath) -> Vec<FieldError> {
        if self.total <= STATIC_ESTIMATED_CRD_COST_LIMIT {
            return Vec::new();
        }
        let mut errs: Vec<FieldError> = self
            .most_expensive
            .iter()
            .map(|(p, _)| {
                FieldError::forbidden(
                    p,
                    "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
                )
            })
            .collect();
        errs.push(FieldError::forbidden(
            schema_path,
            cost_error_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                self.total,
                STATIC_ESTIMATED_CRD_COST_LIMIT,
            ),
        ));
        errs
    }
}

/// Where a schema node sits for cost purposes.
#[derive(Clone, Debug, Default)]
pub struct CelContext {
    /// How many times the node can occur in an object (the product of the `maxItems`/
    /// `maxProperties` above it); `None` when something above is unbounded.
    pub cardinality: Option<u64>,
    /// The schema's running total.
    pub total: Rc<RefCell<TotalCost>>,
    /// Skip the per-expression limits (an update leaving this version's schema unchanged).
    pub suppress_cost: bool,
}

impl CelContext {
    /// The context of a schema's root.
    pub fn root(suppress_cost: bool) -> CelContext {
        CelContext {
            cardinality: Some(1),
            total: Rc::default(),
            suppress_cost,
        }
    }

    /// The context of a child (property, items, additionalProperties) of the node `parent`.
    pub fn child(&self, parent: &Value) -> CelContext {
        let factor = match parent.get("type").and_then(Value::as_str) {
            Some("object")
                if parent
                    .get("additionalProperties")
                    .is_some_and(|a| !a.is_null()) =>
            {
                max_of(parent, "maxProperties")
            }
            Some("array") => max_of(parent, "maxItems"),
            _ => Some(1),
        };
        CelContext {
            cardinality: self
                .cardinality
                .zip(factor)
                .map(|(c, f)| if c == 0 { 0 } else { c.saturating_mul(f) }),
            total: self.total.clone(),
            suppress_cost: self.suppress_cost,
        }
    }
}

fn max_of(schema: &Value, key: &str) -> Option<u64> {
    schema
        .get(key)
        .and_then(Value::as_i64)
        .map(|v| u64::try_from(v).unwrap_or(0))
}

/// Whether an update leaves the schema of version `name` unchanged: its CEL rules then escape
/// the per-expression cost limits, as upstream (`versionsWithUnchangedSchemas`).
pub fn schema_unchanged(new: &Value, old: Option<&Value>, name: &str) -> bool {
    let schema = |crd: &Value| {
        crate::helpers::versions(crd)
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .cloned()
    };
    old.is_some_and(|o| {
        let n = schema(new);
        n.is_some() && n == schema(o)
    })
}

/// Upstream `getCostErrorMessage`.
pub fn cost_error_message(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// A rule as upstream renders the internal `ValidationRule` in a field error.
fn rule_value(r: &ValidationRule) -> String {
    json!({
        "Rule": r.rule,
        "Message": r.message,
        "MessageExpression": r.message_expression,
        "Reason": r.reason,
        "FieldPath": r.field_path,
        "OptionalOldSelf": r.optional_old_self,
    })
    .to_string()
}

/// Compiles the rules of the schema node `schema` at `path`; `resource_root` for the root of the
/// resource and of embedded resources. `uncorrelatable` is the path under which `oldSelf` is
/// not available.
pub fn compile_rules(
    schema: &Value,
    path: &FieldPath,
    resource_root: bool,
    uncorrelatable: Option<&FieldPath>,
    ctx: &CelContext,
    errs: &mut Vec<FieldError>,
) {
    let Ok(s) = Structural::convert(schema) else {
        return;
    };
    let self_ty = decl_type(&s, resource_root);
    for (i, rule) in s.x_validations.iter().enumerate() {
        let rp = path.child("x-kubernetes-validations").index(i);
        let r = compile_rule(rule, self_ty.clone());
        if let Some(t) = &self_ty {
            let cardinality = ctx
                .cardinality
                .unwrap_or_else(|| max_cardinality(t.min_size));
            let cost = if r.max_cost == 0 {
                0
            } else {
                r.max_cost.saturating_mul(cardinality)
            };
            if !ctx.suppress_cost && cost > STATIC_ESTIMATED_COST_LIMIT {
                errs.push(FieldError::forbidden(
                    &rp.child("rule"),
                    cost_error_message("estimated rule cost", cost, STATIC_ESTIMATED_COST_LIMIT),
                ));
            }
            ctx.total.borrow_mut().observe(rp.child("rule"), cost);
        }
        if let Some(e) = &r.error {
            errs.push(FieldError::invalid(&rp.child("rule"), rule_value(rule), e));
        }
        if let Some(e) = &r.message_expression_error {
            errs.push(FieldError::invalid(
                &rp.child("messageExpression"),
                rule_value(rule),
                e,
            ));
        } else if let Some(mcost) = r.message_expression_max_cost {
            if !ctx.suppress_cost && mcost > STATIC_ESTIMATED_COST_LIMIT {
                errs.push(FieldError::forbidden(
                    &rp.child("messageExpression"),
                    cost_error_message(
                        "estimated messageExpression cost",
                        mcost,
                        STATIC_ESTIMATED_COST_LIMIT,
                    ),
                ));
            }
            ctx.total
                .borrow_mut()
                .observe(rp.child("messageExpression"), mcost);
        }
        if r.uses_old_self {
            if let Some(u) = uncorrelatable {
                errs.push(FieldError::invalid_str(
                    &rp.child("rule"),
                    &rule.rule,
                    format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {u}"),
                ));
            }
        } else if let Some(b) = rule.optional_old_self {
            errs.push(FieldError::invalid(
                &rp.child("optionalOldSelf"),
                b,
                "may not be set if oldSelf is not used in rule",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd_schema::validate_crd_schema;

    fn errs(schema: &Value, suppress: bool) -> Vec<String> {
        let p = FieldPath::root("spec").child("validation");
        validate_crd_schema(schema, false, &p, suppress)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const HINT: &str = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";

    #[test]
    fn rules_referring_to_undefined_fields_are_rejected() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.z == 100"}],
            "properties": {"x": {"type": "integer"}}}}});
        assert_eq!(
            errs(&schema, false),
            vec![
                "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: {\"Rule\":\"self.z == 100\",\"Message\":\"\",\"MessageExpression\":\"\",\"Reason\":null,\"FieldPath\":\"\",\"OptionalOldSelf\":null}: compilation failed: ERROR: <input>:1:5: undefined field 'z'\n | self.z == 100\n | ....^"
            ]
        );
    }

    #[test]
    fn rules_over_unbounded_lists_exceed_the_estimated_cost_limit() {
        let items = |bounds: Value| {
            let mut inner = json!({"type": "array", "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(s, s == 'string constant')"}]});
            let mut outer = json!({"type": "array"});
            if let (Some(b), Some(i), Some(o)) = (
                bounds.as_object(),
                inner.as_object_mut(),
                outer.as_object_mut(),
            ) {
                for (k, v) in b {
                    i.insert(k.clone(), v.clone());
                    o.insert(k.clone(), v.clone());
                }
            }
            outer["items"] = inner;
            json!({"type": "object", "properties": {"spec": {"type": "object",
                "properties": {"x": outer}}}})
        };
        let path = "spec.validation.openAPIV3Schema.properties[spec].properties[x].items.x-kubernetes-validations[0].rule";
        assert_eq!(
            errs(&items(json!({})), false),
            vec![
                format!(
                    "{path}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {HINT}"
                ),
                format!(
                    "{path}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
                ),
                format!(
                    "spec.validation.openAPIV3Schema: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {HINT}"
                ),
            ]
        );
        // unchanged schemas on update only keep the total limit
        assert_eq!(errs(&items(json!({})), true).len(), 2);
        assert!(errs(&items(json!({"maxItems": 100})), false).is_empty());
    }

    #[test]
    fn rule_costs_multiply_by_the_cardinality_of_their_node() {
        let schema = |max_items: u64| {
            json!({"type": "object", "properties": {"list": {"type": "array", "maxItems": max_items,
                "items": {"type": "string", "maxLength": 10000,
                    "x-kubernetes-validations": [{"rule": "self.contains('abc')"}]}}}})
        };
        // ceil(40000 * 0.1) * ceil(3 * 0.1) + 1 per item
        assert!(errs(&schema(1000), false).is_empty());
        assert_eq!(
            errs(&schema(10000), false),
            vec![format!(
                "spec.validation.openAPIV3Schema.properties[list].items.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of 4.0x {HINT}"
            )]
        );
        assert_eq!(
            cost_error_message("estimated rule cost", 12_000_000, 10_000_000),
            format!("estimated rule cost exceeds budget by factor of 1.200000x {HINT}")
        );
    }

    #[test]
    fn the_e2e_schema_is_accepted() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.x + self.y > 0"},
                {"rule": "self.firstArray.isSorted() && self.secondArray.isSorted() && ((self.firstArray.sum() + self.secondArray.sum()) % 2 == 0)"},
                {"rule": "self.largeArray.all(x, self.largeArray.all(y, y == x))"}],
            "properties": {
                "x": {"type": "integer"}, "y": {"type": "integer"},
                "firstArray": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}},
                "secondArray": {"type": "array", "maxItems": 1000, "items": {"type": "integer"}},
                "largeArray": {"type": "array", "maxItems": 725, "items": {"type": "integer"}}}},
            "status": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.health == 'ok' || self.health == 'unhealthy'"}],
                "properties": {"health": {"type": "string"}}}}});
        assert!(
            errs(&schema, false).is_empty(),
            "{:?}",
            errs(&schema, false)
        );
    }

    #[test]
    fn old_self_rules_follow_compilation() {
        let schema = json!({"type": "object", "properties": {"list": {"type": "array",
            "items": {"type": "integer", "x-kubernetes-validations": [
                {"rule": "self >= oldSelf"},
                {"rule": "self > 0", "optionalOldSelf": true}]}}}});
        assert_eq!(
            errs(&schema, false),
            vec![
                "spec.validation.openAPIV3Schema.properties[list].items.x-kubernetes-validations[0].rule: Invalid value: \"self >= oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.validation.openAPIV3Schema.properties[list]",
                "spec.validation.openAPIV3Schema.properties[list].items.x-kubernetes-validations[1].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule",
            ]
        );
    }
}
