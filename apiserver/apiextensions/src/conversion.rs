//! Validation of a CRD's `spec.conversion` (mirrors `validateCustomResourceConversion` and
//! `validateConversionReviewVersions` of apiextensions-apiserver
//! pkg/apis/apiextensions/validation/validation.go, and `ValidateWebhookURL`,
//! `ValidateWebhookService`, `ValidateCABundle` of apiserver pkg/util/webhook/validation.go).
//! Paths are those of the internal type: `spec.conversion.webhookClientConfig` and
//! `spec.conversion.conversionReviewVersions`.

use apiserver_apimachinery::names::{is_dns1035_label, is_dns1123_subdomain};
use apiserver_apimachinery::{FieldError, FieldPath};
use base64::Engine;
use serde_json::Value;

/// The ConversionReview versions this server sends, in upstream's sorted order.
pub const ACCEPTED_REVIEW_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

const URL_FORM: &str = "; desired format: https://host[/path]";

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// A Go `[]string` as `%#v` prints it.
fn go_strings(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// A Go `[]byte` as `%#v` prints it.
fn go_bytes(b: &[u8]) -> String {
    let items: Vec<String> = b.iter().map(|x| format!("0x{x:x}")).collect();
    format!("[]byte{{{}}}", items.join(", "))
}

/// The decoded `caBundle` of a client config (JSON carries it as base64); `None` when absent or
/// not base64 (the decoder rejects the latter before validation).
pub fn ca_bundle(client_config: &Value) -> Option<Vec<u8>> {
    let b64 = client_config.get("caBundle")?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// One PEM block: its type, whether it has headers, and its decoded bytes; the rest of the
/// input. `None` when no block is found (Go's `pem.Decode` returning nil).
fn pem_decode(data: &[u8]) -> Option<(String, bool, Vec<u8>, &[u8])> {
    let text = std::str::from_utf8(data).ok()?;
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let type_end = rest.find("-----")?;
    let ty = rest[..type_end].to_string();
    let body_start = rest[type_end + 5..].trim_start_matches(['\r', '\n']);
    let end_marker = format!("-----END {ty}-----");
    let end = body_start.find(&end_marker)?;
    let body = &body_start[..end];
    let mut headers = false;
    let mut b64 = String::new();
    for line in body.lines() {
        if line.contains(':') {
            headers = true;
        } else {
            b64.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()?;
    let consumed = data.len() - body_start.len() + end + end_marker.len();
    let tail = data.get(consumed..).unwrap_or_default();
    let tail = tail
        .strip_prefix(b"\r\n")
        .or_else(|| tail.strip_prefix(b"\n"))
        .unwrap_or(tail);
    Some((ty, headers, der, tail))
}

fn parses_as_certificate(der: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der).is_ok()
}

/// Why a CA bundle cannot be used (client-go's `rootCertPool` and `createErrorParsingCAData`);
/// `None` when at least one certificate can be loaded.
pub fn ca_bundle_error(data: &[u8]) -> Option<String> {
    let mut rest = data;
    while let Some((ty, headers, der, tail)) = pem_decode(rest) {
        if ty == "CERTIFICATE" && !headers && parses_as_certificate(&der) {
            return None;
        }
        rest = tail;
    }
    let why = {
        let mut rest = data;
        loop {
            if rest.is_empty() {
                break "no valid certificate authority data seen".to_string();
            }
            let Some((ty, headers, der, tail)) = pem_decode(rest) else {
                break "unable to parse bytes as PEM block".to_string();
            };
            if ty == "CERTIFICATE" && !headers && !parses_as_certificate(&der) {
                break "failed to parse certificate: x509: malformed certificate".to_string();
            }
            rest = tail;
        }
    };
    Some(format!("unable to load root certificates: {why}"))
}

/// The parts of a webhook URL that validation looks at (Go's `url.Parse`).
struct UrlParts<'a> {
    scheme: &'a str,
    user: Option<&'a str>,
    host: &'a str,
    query: &'a str,
    fragment: &'a str,
}

fn parse_url(u: &str) -> UrlParts<'_> {
    let (u, fragment) = u.split_once('#').unwrap_or((u, ""));
    let (u, query) = u.split_once('?').unwrap_or((u, ""));
    let (scheme, rest) = match u.split_once("://") {
        Some((sc, rest))
            if !sc.is_empty()
                && sc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (sc, Some(rest))
        }
        _ => ("", None),
    };
    let authority = rest.map(|r| r.split('/').next().unwrap_or(""));
    let (user, host) = match authority {
        Some(a) => match a.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, a),
        },
        None => (None, ""),
    };
    UrlParts {
        scheme,
        user,
        host,
        query,
        fragment,
    }
}

/// `ValidateWebhookURL` with `forceHttps`.
pub fn validate_webhook_url(p: &FieldPath, url: &str) -> Vec<FieldError> {
    let u = parse_url(url);
    let mut errs = Vec::new();
    if u.scheme != "https" {
        errs.push(FieldError::invalid_str(
            p,
            u.scheme,
            format!("'https' is the only allowed URL scheme{URL_FORM}"),
        ));
    }
    if u.host.is_empty() {
        errs.push(FieldError::invalid_str(
            p,
            u.host,
            format!("host must be provided{URL_FORM}"),
        ));
    }
    if let Some(user) = u.user {
        errs.push(FieldError::invalid_str(
            p,
            user,
            "user information is not permitted in the URL",
        ));
    }
    if !u.fragment.is_empty() {
        errs.push(FieldError::invalid_str(
            p,
            u.fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !u.query.is_empty() {
        errs.push(FieldError::invalid_str(
            p,
            u.query,
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

/// `ValidateWebhookService` (the service's `port` defaults to 443 before validation).
pub fn validate_webhook_service(p: &FieldPath, svc: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if s(svc, "/name").is_empty() {
        errs.push(FieldError::required(
            &p.child("name"),
            "service name is required",
        ));
    }
    if s(svc, "/namespace").is_empty() {
        errs.push(FieldError::required(
            &p.child("namespace"),
            "service namespace is required",
        ));
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        errs.push(FieldError::invalid(
            &p.child("port"),
            port,
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let Some(path) = svc.get("path").and_then(Value::as_str) else {
        return errs;
    };
    let pp = p.child("path");
    if path.is_empty() || path == "/" {
        return errs;
    }
    if path == "//" {
        errs.push(FieldError::invalid_str(
            &pp,
            path,
            "segment[0] may not be empty",
        ));
        return errs;
    }
    if !path.starts_with('/') {
        errs.push(FieldError::invalid_str(&pp, path, "must start with a '/'"));
    }
    let check = path.get(1..).unwrap_or("");
    let check = check.strip_suffix('/').unwrap_or(check);
    for (i, step) in check.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid_str(
                &pp,
                path,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for m in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid_str(
                &pp,
                path,
                format!("segment[{i}]: {m}"),
            ));
        }
    }
    errs
}

fn validate_review_versions(c: &Value, p: &FieldPath) -> Vec<FieldError> {
    let versions: Vec<String> = c
        .pointer("/webhook/conversionReviewVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return vec![FieldError::required(p, "")];
    }
    let mut errs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut accepted = false;
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(v.as_str()) {
            errs.push(FieldError::invalid_str(&p.index(i), v, "duplicate version"));
            continue;
        }
        for m in is_dns1035_label(v) {
            errs.push(FieldError::invalid_str(&p.index(i), v, m));
        }
        accepted |= ACCEPTED_REVIEW_VERSIONS.contains(&v.as_str());
    }
    if !accepted {
        errs.push(FieldError::invalid(
            p,
            go_strings(&versions),
            format!(
                "must include at least one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errs
}

/// Validates `spec.conversion` at `p`. `allow_invalid_ca_bundle` is upstream's
/// `allowInvalidCABundle`: on create, or while the old CRD is not Established or already had an
/// unusable bundle.
pub fn validate_conversion(
    crd: &Value,
    p: &FieldPath,
    allow_invalid_ca_bundle: bool,
) -> Vec<FieldError> {
    let Some(c) = crd.pointer("/spec/conversion") else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let strategy = s(c, "/strategy");
    match strategy {
        "" => errs.push(FieldError::required(&p.child("strategy"), "")),
        "None" | "Webhook" => {}
        other => errs.push(FieldError::not_supported(
            &p.child("strategy"),
            other,
            &["None", "Webhook"],
        )),
    }
    let cc = c.pointer("/webhook/clientConfig").filter(|v| !v.is_null());
    let ccp = p.child("webhookClientConfig");
    if strategy == "Webhook" {
        match cc {
            None => errs.push(FieldError::required(
                &ccp,
                "required when strategy is set to Webhook",
            )),
            Some(cc) => {
                let url = cc.get("url").filter(|v| !v.is_null());
                let svc = cc.get("service").filter(|v| !v.is_null());
                match (url, svc) {
                    (Some(_), Some(_)) | (None, None) => errs.push(FieldError::required(
                        &ccp,
                        "exactly one of url or service is required",
                    )),
                    (Some(u), None) => errs.extend(validate_webhook_url(
                        &ccp.child("url"),
                        u.as_str().unwrap_or(""),
                    )),
                    (None, Some(svc)) => {
                        errs.extend(validate_webhook_service(&ccp.child("service"), svc))
                    }
                }
                if let Some(ca) = ca_bundle(cc).filter(|b| !b.is_empty())
                    && !allow_invalid_ca_bundle
                    && let Some(why) = ca_bundle_error(&ca)
                {
                    errs.push(FieldError::invalid(
                        &ccp.child("caBundle"),
                        go_bytes(&ca),
                        why,
                    ));
                }
            }
        }
        errs.extend(validate_review_versions(
            c,
            &p.child("conversionReviewVersions"),
        ));
    } else {
        if cc.is_some() {
            errs.push(FieldError::forbidden(
                &ccp,
                "should not be set when strategy is not set to Webhook",
            ));
        }
        let has_versions = c
            .pointer("/webhook/conversionReviewVersions")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if has_versions {
            errs.push(FieldError::forbidden(
                &p.child("conversionReviewVersions"),
                "should not be set when strategy is not set to Webhook",
            ));
        }
    }
    errs
}

/// Upstream's `allowInvalidCABundle(oldCRD)` for updates.
pub fn allow_invalid_ca_bundle_on_update(old: &Value) -> bool {
    if !crate::naming::condition_true(old, "Established") {
        return true;
    }
    match old
        .pointer("/spec/conversion/webhook/clientConfig")
        .and_then(ca_bundle)
    {
        Some(ca) if !ca.is_empty() => ca_bundle_error(&ca).is_some(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(conversion: Value, allow_invalid_ca: bool) -> Vec<String> {
        let crd = json!({"spec": {"conversion": conversion}});
        validate_conversion(
            &crd,
            &FieldPath::root("spec").child("conversion"),
            allow_invalid_ca,
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    #[test]
    fn webhook_requires_client_config_and_review_versions() {
        assert_eq!(
            msgs(json!({"strategy": "Webhook"}), true),
            vec![
                "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
                "spec.conversion.conversionReviewVersions: Required value",
            ]
        );
        assert_eq!(
            msgs(
                json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://a/b",
                    "service": {"namespace": "ns", "name": "n", "port": 443}},
                    "conversionReviewVersions": ["v3", "v3", "V4"]}}),
                true
            ),
            vec![
                "spec.conversion.webhookClientConfig: Required value: exactly one of url or service is required",
                "spec.conversion.conversionReviewVersions[1]: Invalid value: \"v3\": duplicate version",
                "spec.conversion.conversionReviewVersions[2]: Invalid value: \"V4\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                "spec.conversion.conversionReviewVersions: Invalid value: []string{\"v3\", \"v3\", \"V4\"}: must include at least one of v1, v1beta1",
            ]
        );
    }

    #[test]
    fn url_and_service_rules() {
        assert_eq!(
            msgs(
                json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "http://u@/x?a=b#f"},
                    "conversionReviewVersions": ["v1"]}}),
                true
            ),
            vec![
                "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"\": host must be provided; desired format: https://host[/path]",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"u\": user information is not permitted in the URL",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"f\": fragments are not permitted in the URL",
                "spec.conversion.webhookClientConfig.url: Invalid value: \"a=b\": query parameters are not permitted in the URL",
            ]
        );
        assert_eq!(
            msgs(
                json!({"strategy": "Webhook", "webhook": {"clientConfig": {"service":
                    {"namespace": "", "name": "", "port": 0, "path": "/a//B"}},
                    "conversionReviewVersions": ["v1beta1"]}}),
                true
            ),
            vec![
                "spec.conversion.webhookClientConfig.service.name: Required value: service name is required",
                "spec.conversion.webhookClientConfig.service.namespace: Required value: service namespace is required",
                "spec.conversion.webhookClientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
                "spec.conversion.webhookClientConfig.service.path: Invalid value: \"/a//B\": segment[1] may not be empty",
                "spec.conversion.webhookClientConfig.service.path: Invalid value: \"/a//B\": segment[2]: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ]
        );
        assert!(
            msgs(
                json!({"strategy": "Webhook", "webhook": {"clientConfig": {"service":
                {"namespace": "ns", "name": "svc", "port": 8443, "path": "/convert"}},
                "conversionReviewVersions": ["v1"]}}),
                false
            )
            .is_empty()
        );
    }

    #[test]
    fn none_forbids_webhook_fields_and_ca_bundle_is_checked_on_update() {
        assert_eq!(
            msgs(
                json!({"strategy": "None", "webhook": {"clientConfig": {"url": "https://a"},
                    "conversionReviewVersions": ["v1"]}}),
                true
            ),
            vec![
                "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
                "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook",
            ]
        );
        let bad_ca = base64::engine::general_purpose::STANDARD.encode("no");
        let conv = json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://a",
            "caBundle": bad_ca}, "conversionReviewVersions": ["v1"]}});
        assert!(msgs(conv.clone(), true).is_empty());
        assert_eq!(
            msgs(conv, false),
            vec![
                "spec.conversion.webhookClientConfig.caBundle: Invalid value: []byte{0x6e, 0x6f}: unable to load root certificates: unable to parse bytes as PEM block"
            ]
        );
        let established = json!({"status": {"conditions": [{"type": "Established", "status": "True"}]},
            "spec": {"conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://a",
                "caBundle": base64::engine::general_purpose::STANDARD.encode("no")}}}}});
        assert!(allow_invalid_ca_bundle_on_update(&established));
        let mut without_ca = established.clone();
        without_ca["spec"]["conversion"] = json!({"strategy": "None"});
        assert!(!allow_invalid_ca_bundle_on_update(&without_ca));
        assert!(allow_invalid_ca_bundle_on_update(&json!({})));
    }

    #[test]
    fn ca_bundle_errors() {
        let garbage_cert = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";
        assert_eq!(
            ca_bundle_error(garbage_cert.as_bytes()).as_deref(),
            Some(
                "unable to load root certificates: failed to parse certificate: x509: malformed certificate"
            )
        );
        let key_only = "-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            ca_bundle_error(key_only.as_bytes()).as_deref(),
            Some("unable to load root certificates: no valid certificate authority data seen")
        );
    }
}
