//! Create-only review resources answered from the request's identity and the authorizer
//! (mirrors pkg/registry/authorization/* and pkg/registry/authentication/*). No authorizer is
//! wired yet beyond "allow every authenticated user", and the reviews say exactly that.
//! TokenReview answers with the service account token authenticator.

use crate::context::{RequestContext, WriteOptions};
use crate::decode::decode;
use crate::rest::{Rest, WriteOutput};
use crate::serviceaccount::authenticator::TokenAuthenticator;
use apiserver_apimachinery::{ApiError, ResourceInfo};
use async_trait::async_trait;
use bytes::Bytes;
use k8s_openapi::api::authentication::v1::{
    SelfSubjectReview, SelfSubjectReviewStatus, TokenReview, TokenReviewStatus, UserInfo,
};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, NonResourceRule, ResourceRule, SelfSubjectAccessReview,
    SelfSubjectRulesReview, SubjectAccessReview, SubjectAccessReviewStatus,
    SubjectRulesReviewStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

type Answer<K> = fn(&RequestContext, K) -> Result<K, ApiError>;

/// A create-only resource computed from the request.
pub struct ReviewRest<K> {
    pub info: ResourceInfo,
    pub answer: Answer<K>,
}

#[async_trait]
impl<K: DeserializeOwned + Serialize + Send + Sync + 'static> Rest for ReviewRest<K> {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    async fn create(
        &self,
        ctx: &RequestContext,
        _name: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = decode::<K>(
            body,
            &self.info.api_version(),
            self.info.kind,
            opts.field_validation,
        )?;
        let out = (self.answer)(ctx, d.object)?;
        let body = serde_json::to_vec(&out).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(WriteOutput {
            body: Bytes::from(body),
            code: 201,
            warnings: d.warnings,
        })
    }
}

fn user_info(ctx: &RequestContext) -> UserInfo {
    let extra = crate::context::user_extra();
    UserInfo {
        username: Some(ctx.user.name.clone()),
        uid: (!ctx.user.uid.is_empty()).then(|| ctx.user.uid.clone()),
        groups: Some(ctx.user.groups.clone()),
        extra: (!extra.is_empty()).then_some(extra),
    }
}

fn allowed() -> SubjectAccessReviewStatus {
    SubjectAccessReviewStatus {
        allowed: true,
        reason: Some("every authenticated user is allowed (no RBAC yet)".into()),
        ..Default::default()
    }
}

pub fn self_subject_access_review(
    _ctx: &RequestContext,
    mut r: SelfSubjectAccessReview,
) -> Result<SelfSubjectAccessReview, ApiError> {
    r.status = Some(allowed());
    Ok(r)
}

pub fn subject_access_review(
    _ctx: &RequestContext,
    mut r: SubjectAccessReview,
) -> Result<SubjectAccessReview, ApiError> {
    r.status = Some(allowed());
    Ok(r)
}

pub fn local_subject_access_review(
    ctx: &RequestContext,
    mut r: LocalSubjectAccessReview,
) -> Result<LocalSubjectAccessReview, ApiError> {
    let ns = ctx.namespace.clone().unwrap_or_default();
    if r.metadata
        .namespace
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != ns)
    {
        return Err(ApiError::bad_request(
            "namespace of the review does not match the namespace of the request",
        ));
    }
    r.metadata.namespace = Some(ns);
    r.status = Some(allowed());
    Ok(r)
}

pub fn self_subject_rules_review(
    _ctx: &RequestContext,
    mut r: SelfSubjectRulesReview,
) -> Result<SelfSubjectRulesReview, ApiError> {
    r.status = Some(SubjectRulesReviewStatus {
        resource_rules: vec![ResourceRule {
            verbs: vec!["*".into()],
            api_groups: Some(vec!["*".into()]),
            resources: Some(vec!["*".into()]),
            resource_names: None,
        }],
        non_resource_rules: vec![NonResourceRule {
            verbs: vec!["*".into()],
            non_resource_urls: Some(vec!["*".into()]),
        }],
        incomplete: false,
        evaluation_error: None,
    });
    Ok(r)
}

pub fn self_subject_review(
    ctx: &RequestContext,
    mut r: SelfSubjectReview,
) -> Result<SelfSubjectReview, ApiError> {
    r.status = Some(SelfSubjectReviewStatus {
        user_info: Some(user_info(ctx)),
    });
    Ok(r)
}

/// `tokenreviews` (mirrors pkg/registry/authentication/tokenreview/storage.go): answers with
/// the service account token authenticator.
pub struct TokenReviewRest {
    pub info: ResourceInfo,
    pub authenticator: Option<Arc<TokenAuthenticator>>,
}

#[async_trait]
impl Rest for TokenReviewRest {
    fn info(&self) -> &ResourceInfo {
        &self.info
    }
    async fn create(
        &self,
        _ctx: &RequestContext,
        _name: Option<&str>,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<WriteOutput, ApiError> {
        let d = decode::<TokenReview>(
            body,
            &self.info.api_version(),
            self.info.kind,
            opts.field_validation,
        )?;
        let mut r = d.object;
        if r.spec.token.is_empty() {
            return Err(ApiError::bad_request(
                "token is required for TokenReview in authentication",
            ));
        }
        let status = match &self.authenticator {
            None => TokenReviewStatus {
                error: Some("no token authenticator is configured".into()),
                user: Some(UserInfo::default()),
                ..Default::default()
            },
            Some(a) => {
                let requested = r.spec.audiences.clone().filter(|v| !v.is_empty());
                match a.authenticate(&r.spec.token, requested.as_deref()).await {
                    Ok(ok) => TokenReviewStatus {
                        authenticated: Some(true),
                        audiences: Some(ok.audiences),
                        error: None,
                        user: Some(UserInfo {
                            username: Some(ok.user.name),
                            uid: Some(ok.user.uid).filter(|u| !u.is_empty()),
                            groups: Some(ok.user.groups),
                            extra: (!ok.user.extra.is_empty()).then_some(ok.user.extra),
                        }),
                    },
                    Err(e) => TokenReviewStatus {
                        error: Some(e),
                        user: Some(UserInfo::default()),
                        ..Default::default()
                    },
                }
            }
        };
        r.status = Some(status);
        let body = serde_json::to_vec(&r).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(WriteOutput {
            body: Bytes::from(body),
            code: 201,
            warnings: d.warnings,
        })
    }
}
