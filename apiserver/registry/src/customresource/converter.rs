//! Converting custom resources between the versions of their CRD (mirrors apiextensions-apiserver
//! pkg/apiserver/conversion: `crConverter` (valid versions), `nopConverter` (`strategy: None`:
//! only `apiVersion` changes), `webhookConverter` (`strategy: Webhook`: a ConversionReview per
//! conversion; objects already in the desired version are not sent) and the
//! `schemaCoercingConverter` of customresource_handler.go, which prunes what a webhook returns
//! with the target version's schema). Conversion is async: a webhook may be called.

use super::resolver::ServiceResolver;
use super::review::{self, ReviewVersion};
use super::webhook::WebhookClient;
use apiserver_apiextensions::Structural;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// `strategy: Webhook`: the client (or why it could not be built) and the review versions.
pub struct WebhookConverter {
    client: Result<WebhookClient, String>,
    review_versions: Vec<String>,
}

impl WebhookConverter {
    /// From `spec.conversion.webhook`.
    pub fn new(webhook: &Value, resolver: Arc<dyn ServiceResolver>) -> Self {
        let client = match webhook.get("clientConfig") {
            Some(cc) => WebhookClient::new(cc, resolver),
            None => Err("webhook configuration must have either service or URL".into()),
        };
        WebhookConverter {
            client,
            review_versions: webhook
                .get("conversionReviewVersions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// From a ready client (tests).
    pub fn with_client(client: WebhookClient, review_versions: Vec<String>) -> Self {
        WebhookConverter {
            client: Ok(client),
            review_versions,
        }
    }

    /// Sends `objects` in one review; returns the converted objects after the review's checks.
    /// `gvk` names the input in errors.
    async fn call(
        &self,
        gvk: &str,
        objects: &[Value],
        desired: &str,
    ) -> Result<Vec<Value>, String> {
        let version = review::pick_review_version(&self.review_versions)?;
        let uid = uuid::Uuid::new_v4().to_string();
        let request = review::review_request(version, &uid, desired, objects);
        let failed = |e: String| format!("conversion webhook for {gvk} failed: {e}");
        let client = self.client.as_ref().map_err(|e| failed(e.clone()))?;
        let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
        let response = client.post_json(body).await.map_err(failed)?;
        review::converted_objects(version, &uid, &response).map_err(failed)
    }

    pub fn review_version(&self) -> Option<ReviewVersion> {
        review::pick_review_version(&self.review_versions).ok()
    }
}

/// The converter of one CRD.
pub struct CrConverter {
    /// The CRD's versions as apiVersions (`group/version`).
    valid: Vec<String>,
    /// Schemas by apiVersion, for pruning what a webhook returns.
    schemas: BTreeMap<String, Arc<Structural>>,
    webhook: Option<WebhookConverter>,
}

fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

fn set_api_version(obj: &mut Value, av: &str) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), Value::from(av));
    }
}

/// Upstream's `isEmptyUnstructuredObject`: nothing but apiVersion and kind.
fn is_empty_object(obj: &Value) -> bool {
    obj.as_object()
        .is_some_and(|o| o.len() == 2 && o.contains_key("apiVersion") && o.contains_key("kind"))
}

impl CrConverter {
    /// A converter for the given apiVersions; `webhook` is `None` for `strategy: None`.
    pub fn new(
        valid: Vec<String>,
        schemas: BTreeMap<String, Arc<Structural>>,
        webhook: Option<WebhookConverter>,
    ) -> Self {
        CrConverter {
            valid,
            schemas,
            webhook,
        }
    }

    /// Whether conversions may call a webhook.
    pub fn is_webhook(&self) -> bool {
        self.webhook.is_some()
    }

    fn check_to(&self, to: &str) -> Result<(), String> {
        if self.valid.iter().any(|v| v == to) {
            Ok(())
        } else {
            Err(format!(
                "request to convert CR to an invalid group/version: {to}"
            ))
        }
    }

    fn prune(&self, to: &str, obj: &mut Value) {
        if let Some(s) = self.schemas.get(to) {
            s.prune(obj);
        }
    }

    /// Converts one object to `to` (upstream's single-object conversion). An object already in
    /// `to` is returned as is.
    pub async fn convert_one(&self, mut obj: Value, to: &str) -> Result<Value, String> {
        self.check_to(to)?;
        let from = api_version(&obj).to_string();
        if from == to {
            return Ok(obj);
        }
        if !self.valid.contains(&from) {
            return Err(format!(
                "request to convert CR from an invalid group/version: {from}"
            ));
        }
        let Some(w) = &self.webhook else {
            set_api_version(&mut obj, to);
            return Ok(obj);
        };
        if is_empty_object(&obj) {
            set_api_version(&mut obj, to);
            return Ok(obj);
        }
        let converted = w
            .call(&review::gvk_of(&obj), std::slice::from_ref(&obj), to)
            .await?;
        let mut out = review::finish_single(&obj, to, converted)?;
        self.prune(to, &mut out);
        Ok(out)
    }

    /// Converts many objects to `to` in one review (upstream's list conversion): objects already
    /// in `to` are not sent and keep their place.
    pub async fn convert_many(&self, mut objs: Vec<Value>, to: &str) -> Result<Vec<Value>, String> {
        self.check_to(to)?;
        for (i, o) in objs.iter().enumerate() {
            let av = api_version(o);
            if !self.valid.iter().any(|v| v == av) {
                return Err(format!(
                    "request to convert CR list failed, list index {i} has invalid group/version: {av}"
                ));
            }
        }
        let pending: Vec<usize> = (0..objs.len())
            .filter(|&i| api_version(&objs[i]) != to)
            .collect();
        if pending.is_empty() {
            return Ok(objs);
        }
        let Some(w) = &self.webhook else {
            for i in pending {
                set_api_version(&mut objs[i], to);
            }
            return Ok(objs);
        };
        let sent: Vec<Value> = pending.iter().map(|&i| objs[i].clone()).collect();
        let gvk = review::gvk_of(&sent[0]);
        let converted = w.call(&gvk, &sent, to).await?;
        let converted = review::finish_list(&gvk, &sent, to, converted)?;
        for (i, mut c) in pending.into_iter().zip(converted) {
            self.prune(to, &mut c);
            objs[i] = c;
        }
        Ok(objs)
    }
}

/// The converter of a CRD: its versions, their schemas, and its strategy.
pub fn for_crd(
    crd: &Value,
    schemas: BTreeMap<String, Arc<Structural>>,
    resolver: Arc<dyn ServiceResolver>,
) -> CrConverter {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let valid = apiserver_apiextensions::helpers::versions(crd)
        .iter()
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .map(|v| format!("{group}/{v}"))
        .collect();
    let webhook = match crd
        .pointer("/spec/conversion/strategy")
        .and_then(Value::as_str)
    {
        Some("Webhook") => Some(WebhookConverter::new(
            crd.pointer("/spec/conversion/webhook")
                .unwrap_or(&Value::Null),
            resolver,
        )),
        _ => None,
    };
    CrConverter::new(valid, schemas, webhook)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nop() -> CrConverter {
        CrConverter::new(vec!["g/v1".into(), "g/v2".into()], BTreeMap::new(), None)
    }

    #[tokio::test]
    async fn none_strategy_rewrites_api_version_only() {
        let c = nop();
        let o = json!({"apiVersion": "g/v1", "kind": "W", "spec": {"a": 1}});
        assert_eq!(
            c.convert_one(o.clone(), "g/v2").await.unwrap(),
            json!({"apiVersion": "g/v2", "kind": "W", "spec": {"a": 1}})
        );
        assert_eq!(
            c.convert_one(o.clone(), "g/v3").await,
            Err("request to convert CR to an invalid group/version: g/v3".into())
        );
        let stray = json!({"apiVersion": "g/v0", "kind": "W"});
        assert_eq!(
            c.convert_one(stray.clone(), "g/v2").await,
            Err("request to convert CR from an invalid group/version: g/v0".into())
        );
        assert_eq!(
            c.convert_many(vec![o.clone(), stray], "g/v2").await,
            Err(
                "request to convert CR list failed, list index 1 has invalid group/version: g/v0"
                    .into()
            )
        );
        let many = c.convert_many(vec![o.clone(), o], "g/v2").await.unwrap();
        assert!(many.iter().all(|o| o["apiVersion"] == "g/v2"));
    }

    #[tokio::test]
    async fn webhook_errors_are_wrapped_and_nothing_is_sent_when_not_needed() {
        let c = CrConverter::new(
            vec!["g/v1".into(), "g/v2".into()],
            BTreeMap::new(),
            Some(WebhookConverter {
                client: Err(
                    "unable to load root certificates: no valid certificate authority data seen"
                        .into(),
                ),
                review_versions: vec!["v1".into()],
            }),
        );
        let o = json!({"apiVersion": "g/v1", "kind": "W", "metadata": {"name": "a"}});
        assert_eq!(
            c.convert_one(o.clone(), "g/v2").await,
            Err("conversion webhook for g/v1, Kind=W failed: unable to load root certificates: no valid certificate authority data seen".into())
        );
        // Already in the desired version, or empty: no webhook call (which would fail here).
        assert_eq!(c.convert_one(o.clone(), "g/v1").await.unwrap(), o);
        let empty = json!({"apiVersion": "g/v1", "kind": "W"});
        assert_eq!(
            c.convert_one(empty, "g/v2").await.unwrap()["apiVersion"],
            "g/v2"
        );
        assert_eq!(
            c.convert_many(vec![o.clone()], "g/v1").await.unwrap(),
            vec![o]
        );
        let unsupported = CrConverter::new(
            vec!["g/v1".into(), "g/v2".into()],
            BTreeMap::new(),
            Some(WebhookConverter {
                client: Err("unused".into()),
                review_versions: vec!["v9".into()],
            }),
        );
        assert_eq!(
            unsupported
                .convert_one(
                    json!({"apiVersion": "g/v1", "kind": "W", "metadata": {}}),
                    "g/v2"
                )
                .await,
            Err("no supported conversion review versions".into())
        );
    }
}
