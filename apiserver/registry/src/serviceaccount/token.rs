//! `serviceaccounts/token` (mirrors pkg/registry/core/serviceaccount/storage/token.go and the
//! TokenRequest defaulting and validation of pkg/apis/authentication): issues a signed token for
//! a service account, optionally bound to a pod, secret or node.

use super::claims::{Binding, Ref, new_claims};
use super::jwt::TokenGenerator;
use super::{EXPIRATION_EXTENSION_SECONDS, WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS};
use crate::context::{RequestContext, WriteOptions};
use crate::decode::decode;
use crate::rest::{Rest, WriteOutput};
use crate::serviceaccount::authenticator::{Getter, cached_get};
use apiserver_apimachinery::{ApiError, FieldError, FieldPath, Reason, ResourceInfo};
use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec, TokenRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";
/// Shortest token lifetime a request may ask for (upstream `MinTokenAgeSec`).
pub const MIN_TOKEN_AGE_SECONDS: i64 = 10 * 60;
const MAX_TOKEN_AGE_SECONDS: i64 = 1 << 32;
const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;

pub struct TokenRest {
    /// The serviceaccounts resource.
    pub info: ResourceInfo,
    pub getter: Getter,
    pub issuer: TokenGenerator,
    /// `--api-audiences`: the default audiences of a token.
    pub audiences: Vec<String>,
    /// `--service-account-max-token-expiration` in seconds (0: no maximum).
    pub max_expiration_seconds: i64,
    /// `--service-account-extend-token-expiration`.
    pub extend_expiration: bool,
}

fn invalid(name: &str, errs: &[FieldError]) -> ApiError {
    ApiError::invalid(GROUP, KIND, name, errs)
}

/// Upstream `ValidateTokenRequest`.
fn validate(tr: &TokenRequestSpec) -> Vec<FieldError> {
    let spec = FieldPath::root("spec");
    let mut errs = Vec::new();
    let exp = tr.expiration_seconds.unwrap_or(0);
    if exp < MIN_TOKEN_AGE_SECONDS {
        errs.push(FieldError::invalid(
            &spec.child("expirationSeconds"),
            exp,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if exp > MAX_TOKEN_AGE_SECONDS {
        errs.push(FieldError::invalid(
            &spec.child("expirationSeconds"),
            exp,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    // Attestations are only for webhook-bound tokens, which this server does not issue.
    if tr.attestations.as_ref().is_some_and(|a| !a.is_empty()) {
        let path = spec.child("attestations");
        errs.push(match &tr.bound_object_ref {
            None => FieldError::invalid_str(
                &path,
                "",
                "attestations may not be specified without a bound object reference",
            ),
            Some(r) => {
                let kind = r.kind.clone().unwrap_or_default();
                FieldError::invalid_str(
                    &path,
                    &kind,
                    format!(
                        "attestations may not be specified when bound object ref is of kind {kind}"
                    ),
                )
            }
        });
    }
    errs
}

/// The group of an apiVersion (`v1` -> "", `apps/v1` -> "apps").
fn group_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

impl TokenRest {
    fn uid_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
        meta.uid.clone().unwrap_or_default()
    }

    /// Resolves `spec.boundObjectRef` to the binding of the token.
    async fn bind(
        &self,
        tr: &TokenRequestSpec,
        ns: &str,
        sa_name: &str,
    ) -> Result<Binding, ApiError> {
        let Some(r) = &tr.bound_object_ref else {
            return Ok(Binding::default());
        };
        let api_version = r.api_version.clone().unwrap_or_default();
        let kind = r.kind.clone().unwrap_or_default();
        let name = r.name.clone().unwrap_or_default();
        let (group, version) = group_version(&api_version);
        let g = &self.getter;
        let mut binding = Binding::default();
        let uid = match (group, kind.as_str()) {
            ("", "Pod") => {
                let pod = g.pods.get(Some(ns), &name).await?;
                let pod_sa = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.service_account_name.as_deref());
                if pod_sa.unwrap_or("") != sa_name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                    )));
                }
                let uid = Self::uid_of(&pod.metadata);
                binding.pod = Some(Ref::new(&name, &uid));
                let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
                if let Some(node_name) = node_name.filter(|n| !n.is_empty()) {
                    binding.node = Some(match cached_get(&g.nodes, None, &node_name).await {
                        Ok(node) => Ref::new(&node_name, Self::uid_of(&node.metadata)),
                        // A missing node still names the pod's node in the claims.
                        Err(e) if e.reason == Reason::NotFound => Ref::new(&node_name, ""),
                        Err(e) => return Err(ApiError::internal(e.message)),
                    });
                }
                uid
            }
            ("", "Node") => {
                let node = g.nodes.get(None, &name).await?;
                let uid = Self::uid_of(&node.metadata);
                binding.node = Some(Ref::new(&name, &uid));
                uid
            }
            ("", "Secret") => {
                let secret = g.secrets.get(Some(ns), &name).await?;
                let uid = Self::uid_of(&secret.metadata);
                binding.secret = Some(Ref::new(&name, &uid));
                uid
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        if let Some(want) = r.uid.as_deref().filter(|u| !u.is_empty() && *u != uid) {
            return Err(ApiError::conflict(
                group,
                &kind,
                &name,
                &format!(
                    "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        Ok(binding)
    }

    fn is_kube_audiences(&self, audiences: &[String]) -> bool {
        audiences.iter().all(|a| self.audiences.contains(a))
    }
}

#[async_trait]
impl Rest for TokenRest {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    fn body_kind(&self) -> (String, String) {
        (format!("{GROUP}/v1"), KIND.into())
    }
    async fn create(
        &self,
        ctx: &RequestContext,
        name: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let decoded =
            decode::<TokenRequest>(body, &format!("{GROUP}/v1"), KIND, opts.field_validation)?;
        let mut warnings = decoded.warnings;
        let mut req = decoded.object;
        let name = name.unwrap_or("");
        let ns = ctx
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("namespace is required"))?;
        let mut spec = req.spec.take().unwrap_or_default();
        if spec.expiration_seconds.is_none() {
            spec.expiration_seconds = Some(DEFAULT_EXPIRATION_SECONDS);
        }
        let meta = &req.metadata;
        if let Some(n) = meta.name.as_deref().filter(|n| !n.is_empty() && *n != name) {
            return Err(invalid(
                name,
                &[FieldError::invalid_str(
                    &FieldPath::root("metadata").child("name"),
                    n,
                    "must match the service account name if specified",
                )],
            ));
        }
        if let Some(n) = meta
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && *n != ns)
        {
            return Err(invalid(
                name,
                &[FieldError::invalid_str(
                    &FieldPath::root("metadata").child("namespace"),
                    n,
                    "must match the service account namespace if specified",
                )],
            ));
        }
        let sa = self.getter.service_accounts.get(Some(&ns), name).await?;
        let sa_uid = Self::uid_of(&sa.metadata);
        if let Some(u) = meta
            .uid
            .as_deref()
            .filter(|u| !u.is_empty() && *u != sa_uid)
        {
            return Err(ApiError::conflict(
                GROUP,
                KIND,
                name,
                &format!(
                    "the UID in the token request ({u}) does not match the UID of the service account ({sa_uid})"
                ),
            ));
        }
        if spec.audiences.as_ref().is_none_or(Vec::is_empty) {
            spec.audiences = Some(self.audiences.clone());
        }
        req.metadata.name = Some(name.to_string());
        req.metadata.namespace = Some(ns.clone());
        req.metadata.uid = Some(sa_uid.clone());
        let now = jiff::Timestamp::now().as_second();
        let now_ts =
            jiff::Timestamp::from_second(now).map_err(|e| ApiError::internal(e.to_string()))?;
        req.metadata.creation_timestamp = Some(Time(now_ts));
        req.status = None;
        let errs = validate(&spec);
        if !errs.is_empty() {
            return Err(invalid("", &errs));
        }
        let binding = self.bind(&spec, &ns, name).await?;
        let mut requested = spec
            .expiration_seconds
            .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
        if self.max_expiration_seconds > 0 && requested > self.max_expiration_seconds {
            warnings.push(format!(
                "requested expiration of {requested} seconds shortened to {} seconds",
                self.max_expiration_seconds
            ));
            requested = self.max_expiration_seconds;
            spec.expiration_seconds = Some(requested);
        }
        // Pod-bound tokens the kubelet asks for with the admission-injected lifetime live a year;
        // clients are told the requested expiry and the token carries `warnafter`.
        let audiences = spec.audiences.clone().unwrap_or_default();
        let (exp, warn_after) = if self.extend_expiration
            && binding.pod.is_some()
            && requested == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
            && self.is_kube_audiences(&audiences)
        {
            (EXPIRATION_EXTENSION_SECONDS, requested)
        } else {
            (requested, 0)
        };
        let claims = new_claims(
            &ns,
            Ref::new(name, &sa_uid),
            binding,
            exp,
            warn_after,
            audiences,
            now,
            uuid::Uuid::new_v4().to_string(),
        )
        .map_err(ApiError::internal)?;
        let token = self
            .issuer
            .generate(&claims)
            .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
        let expires = jiff::Timestamp::from_second(now + requested)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        req.spec = Some(spec);
        req.status = Some(TokenRequestStatus {
            token: Some(token),
            expiration_timestamp: Some(Time(expires)),
        });
        let body = serde_json::to_vec(&req).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(WriteOutput {
            body: Bytes::from(body),
            code: 201,
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(v: serde_json::Value) -> TokenRequestSpec {
        serde_json::from_value(v["spec"].clone()).unwrap()
    }

    #[test]
    fn validation_messages() {
        let short = tr(serde_json::json!({"spec": {"expirationSeconds": 60}}));
        let errs = validate(&short);
        assert_eq!(
            invalid("", &errs).message,
            "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
        let long = tr(serde_json::json!({"spec": {"expirationSeconds": 4294967297i64}}));
        assert_eq!(
            validate(&long)[0].to_string(),
            "spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"
        );
        let ok = tr(serde_json::json!({"spec": {"expirationSeconds": 600}}));
        assert!(validate(&ok).is_empty());
        let att = tr(serde_json::json!({"spec": {"expirationSeconds": 600,
            "attestations": {"k": ["v"]}, "boundObjectRef": {"kind": "Pod", "name": "p"}}}));
        assert_eq!(
            validate(&att)[0].to_string(),
            "spec.attestations: Invalid value: \"Pod\": attestations may not be specified when bound object ref is of kind Pod"
        );
    }

    #[test]
    fn group_versions() {
        assert_eq!(group_version("v1"), ("", "v1"));
        assert_eq!(group_version("apps/v1"), ("apps", "v1"));
    }
}
