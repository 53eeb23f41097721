//! Job pod failure policy and managedBy validation (mirrors validatePodFailurePolicy and the
//! managedBy checks of pkg/apis/batch/validation/validation.go).

use super::*;

pub(super) fn pod_failure_policy(
    errs: &mut Errs,
    spec: &batch::JobSpec,
    pfp: &batch::PodFailurePolicy,
    path: &FieldPath,
) {
    let rp = path.child("rules");
    if pfp.rules.len() > 20 {
        errs.push(FieldError::too_many(&rp, pfp.rules.len(), 20));
    }
    let tspec = spec.template.spec.clone().unwrap_or_default();
    let names: BTreeSet<String> = tspec
        .containers
        .iter()
        .chain(tspec.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect();
    let actions = ["Count", "FailIndex", "FailJob", "Ignore"];
    for (i, rule) in pfp.rules.iter().enumerate() {
        let p = rp.index(i);
        match rule.action.as_str() {
            "" => errs.push(FieldError::required(
                &p.child("action"),
                "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
            )),
            "FailIndex" if spec.backoff_limit_per_index.is_none() => {
                errs.push(FieldError::invalid_str(
                    &p.child("action"),
                    "FailIndex",
                    "requires the backoffLimitPerIndex to be set",
                ));
            }
            a if !actions.contains(&a) => {
                errs.push(FieldError::not_supported(&p.child("action"), a, &actions))
            }
            _ => {}
        }
        if let Some(oec) = &rule.on_exit_codes {
            let op = p.child("onExitCodes");
            match oec.operator.as_str() {
                "" => errs.push(FieldError::required(
                    &op.child("operator"),
                    "valid values: [\"In\" \"NotIn\"]",
                )),
                "In" | "NotIn" => {}
                other => errs.push(FieldError::not_supported(
                    &op.child("operator"),
                    other,
                    &["In", "NotIn"],
                )),
            }
            if let Some(cn) = &oec.container_name
                && !names.contains(cn)
            {
                errs.push(FieldError::invalid_str(
                    &op.child("containerName"),
                    cn,
                    "must be one of the container or initContainer names in the pod template",
                ));
            }
            let vp = op.child("values");
            if oec.values.is_empty() {
                errs.push(FieldError::invalid(
                    &vp,
                    "[]",
                    "at least one value is required",
                ));
            } else if oec.values.len() > 255 {
                errs.push(FieldError::too_many(&vp, oec.values.len(), 255));
            }
            let mut seen = BTreeSet::new();
            for (j, v) in oec.values.iter().enumerate() {
                if oec.operator == "In" && *v == 0 {
                    errs.push(FieldError::invalid(
                        &vp.index(j),
                        v,
                        "must not be 0 for the In operator",
                    ));
                }
                if !seen.insert(*v) {
                    errs.push(FieldError::duplicate(&vp.index(j), v));
                }
            }
            if oec.values.windows(2).any(|w| w[0] > w[1]) {
                errs.push(FieldError::invalid(
                    &vp,
                    util::json(&oec.values),
                    "must be ordered",
                ));
            }
        }
        let conds = rule.on_pod_conditions.as_deref().unwrap_or(&[]);
        if conds.len() > 20 {
            errs.push(FieldError::too_many(
                &p.child("onPodConditions"),
                conds.len(),
                20,
            ));
        }
        for (j, c) in conds.iter().enumerate() {
            let cp = p.child("onPodConditions").index(j);
            util::qualified_name(errs, &c.type_, &cp.child("type"));
            match c.status.as_deref().unwrap_or("") {
                "" => errs.push(FieldError::required(
                    &cp.child("status"),
                    "valid values: [\"False\" \"True\" \"Unknown\"]",
                )),
                "True" | "False" | "Unknown" => {}
                other => errs.push(FieldError::not_supported(
                    &cp.child("status"),
                    other,
                    &["False", "True", "Unknown"],
                )),
            }
        }
        match (rule.on_exit_codes.is_some(), !conds.is_empty()) {
            (true, true) => errs.push(omit_value_invalid(
                &p,
                "specifying both OnExitCodes and OnPodConditions is not supported",
            )),
            (false, false) => errs.push(omit_value_invalid(
                &p,
                "specifying one of OnExitCodes and OnPodConditions is required",
            )),
            _ => {}
        }
    }
}

/// `field.Invalid(path, field.OmitValueType{}, detail)`: an invalid-value error without a value.
fn omit_value_invalid(path: &FieldPath, detail: &str) -> FieldError {
    FieldError {
        kind: apiserver_apimachinery::FieldErrorType::Invalid,
        field: path.clone(),
        value: None,
        detail: detail.to_string(),
    }
}

pub(super) fn managed_by(errs: &mut Errs, mb: &str, path: &FieldPath) {
    match mb.split_once('/') {
        Some((host, rest)) if !host.is_empty() && !rest.is_empty() => {
            util::dns_subdomain(errs, host, path);
            let ok = rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
            if !ok {
                errs.push(FieldError::invalid_str(
                    path,
                    rest,
                    "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
                ));
            }
        }
        _ => errs.push(FieldError::invalid_str(
            path,
            mb,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )),
    }
    if mb.len() > 63 {
        let mut e = FieldError::too_long(path, 63);
        e.detail = "may not be more than 63 bytes".to_string();
        errs.push(e);
    }
}
