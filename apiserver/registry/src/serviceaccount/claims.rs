//! The claims of a service account token and their time validation (mirrors
//! pkg/serviceaccount/claims.go), and the user a validated token stands for (mirrors
//! apiserver/pkg/authentication/serviceaccount/util.go).
//!
//! Fields are declared in the order upstream's token builder writes them (it merges all claims
//! into one JSON map, so keys come out sorted).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Leeway for time claims and deletion checks (go-jose's `jwt.DefaultLeeway`).
pub const LEEWAY_SECONDS: i64 = 60;

pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// `system:serviceaccount:<namespace>:<name>`.
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A name and uid (`ref` in claims.go).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Ref {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

impl Ref {
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        Ref {
            name: name.into(),
            uid: uid.into(),
        }
    }
}

/// The private `kubernetes.io` claim.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct KubernetesClaims {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    #[serde(default)]
    pub serviceaccount: Ref,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub warnafter: Option<i64>,
}

/// Every claim of a token: the registered ones and `kubernetes.io`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Claims {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "audience"
    )]
    pub aud: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub exp: Option<i64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io", default)]
    pub kubernetes: KubernetesClaims,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "numeric_date"
    )]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub: String,
}

/// `aud` is a string or a list of strings.
fn audience<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => Vec::new(),
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
    })
}

/// NumericDate: seconds since the epoch, possibly fractional.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.map(|f| f as i64))
}

/// What a new token is bound to.
#[derive(Clone, Debug, Default)]
pub struct Binding {
    pub pod: Option<Ref>,
    pub secret: Option<Ref>,
    pub node: Option<Ref>,
}

/// The claims of a new token (upstream `Claims`): valid from `now` for `expiration_seconds`,
/// with `warnafter` (if non-zero) `warnafter` seconds after `now`. A pod-bound token also names
/// the pod's node when known.
#[allow(clippy::too_many_arguments)]
pub fn new_claims(
    namespace: &str,
    service_account: Ref,
    bound: Binding,
    expiration_seconds: i64,
    warnafter: i64,
    audiences: Vec<String>,
    now: i64,
    jti: String,
) -> Result<Claims, String> {
    if bound.secret.is_some() && (bound.node.is_some() || bound.pod.is_some()) {
        return Err("internal error, token can only be bound to one object type".into());
    }
    let mut k = KubernetesClaims {
        namespace: namespace.to_string(),
        serviceaccount: service_account.clone(),
        ..Default::default()
    };
    if let Some(pod) = bound.pod {
        k.pod = Some(pod);
        k.node = bound.node;
    } else if let Some(secret) = bound.secret {
        k.secret = Some(secret);
    } else {
        k.node = bound.node;
    }
    if warnafter != 0 {
        k.warnafter = Some(now + warnafter);
    }
    Ok(Claims {
        aud: audiences,
        exp: Some(now + expiration_seconds),
        iat: Some(now),
        iss: String::new(),
        jti,
        kubernetes: k,
        nbf: Some(now),
        sub: username(namespace, &service_account.name),
    })
}

/// The time checks of go-jose's `Claims.Validate` with the default leeway, and upstream's
/// messages for them.
pub fn validate_times(c: &Claims, now: i64) -> Result<(), String> {
    if c.nbf.is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
        return Err("service account token is not valid yet".into());
    }
    if c.exp.is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
        return Err("service account token has expired".into());
    }
    if c.iat.is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
        return Err("service account token is issued in the future".into());
    }
    Ok(())
}

/// A validated token's account and binding (upstream `ServiceAccountInfo`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceAccountInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub pod_name: String,
    pub pod_uid: String,
    pub node_name: String,
    pub node_uid: String,
    pub credential_id: String,
}

/// A user as the authenticators produce it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl ServiceAccountInfo {
    /// The user (upstream `ServiceAccountInfo.UserInfo`), before `system:authenticated` is added.
    pub fn user(&self) -> User {
        let mut extra = BTreeMap::new();
        if !self.pod_name.is_empty() && !self.pod_uid.is_empty() {
            extra.insert(POD_NAME_KEY.to_string(), vec![self.pod_name.clone()]);
            extra.insert(POD_UID_KEY.to_string(), vec![self.pod_uid.clone()]);
        }
        if !self.credential_id.is_empty() {
            extra.insert(
                CREDENTIAL_ID_KEY.to_string(),
                vec![self.credential_id.clone()],
            );
        }
        if !self.node_name.is_empty() {
            extra.insert(NODE_NAME_KEY.to_string(), vec![self.node_name.clone()]);
            if !self.node_uid.is_empty() {
                extra.insert(NODE_UID_KEY.to_string(), vec![self.node_uid.clone()]);
            }
        }
        User {
            name: username(&self.namespace, &self.name),
            uid: self.uid.clone(),
            groups: vec![
                ALL_SERVICE_ACCOUNTS_GROUP.to_string(),
                format!("{ALL_SERVICE_ACCOUNTS_GROUP}:{}", self.namespace),
            ],
            extra,
        }
    }
}

/// `JTI=<jti>` (upstream `CredentialIDForJTI`), empty without a jti.
pub fn credential_id_for_jti(jti: &str) -> String {
    if jti.is_empty() {
        String::new()
    } else {
        format!("JTI={jti}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_claims() -> Claims {
        new_claims(
            "ns",
            Ref::new("sa", "sa-uid"),
            Binding {
                pod: Some(Ref::new("p", "p-uid")),
                node: Some(Ref::new("n1", "n-uid")),
                secret: None,
            },
            3600,
            3607,
            vec!["api".into()],
            1_000,
            "id-1".into(),
        )
        .unwrap()
    }

    #[test]
    fn claims_serialize_as_upstream_orders_them() {
        let json = serde_json::to_string(&pod_claims()).unwrap();
        assert_eq!(
            json,
            r#"{"aud":["api"],"exp":4600,"iat":1000,"jti":"id-1","kubernetes.io":{"namespace":"ns","node":{"name":"n1","uid":"n-uid"},"pod":{"name":"p","uid":"p-uid"},"serviceaccount":{"name":"sa","uid":"sa-uid"},"warnafter":4607},"nbf":1000,"sub":"system:serviceaccount:ns:sa"}"#
        );
        let back: Claims = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pod_claims());
    }

    #[test]
    fn bindings() {
        let secret = new_claims(
            "ns",
            Ref::new("sa", "u"),
            Binding {
                secret: Some(Ref::new("s", "s-uid")),
                ..Default::default()
            },
            600,
            0,
            vec![],
            0,
            String::new(),
        )
        .unwrap();
        assert_eq!(secret.kubernetes.secret, Some(Ref::new("s", "s-uid")));
        assert_eq!(secret.kubernetes.warnafter, None);
        let node_only = new_claims(
            "ns",
            Ref::new("sa", "u"),
            Binding {
                node: Some(Ref::new("n", "n-uid")),
                ..Default::default()
            },
            600,
            0,
            vec![],
            0,
            String::new(),
        )
        .unwrap();
        assert_eq!(node_only.kubernetes.node, Some(Ref::new("n", "n-uid")));
        let both = Binding {
            secret: Some(Ref::new("s", "1")),
            pod: Some(Ref::new("p", "2")),
            node: None,
        };
        assert_eq!(
            new_claims("ns", Ref::default(), both, 600, 0, vec![], 0, String::new()).unwrap_err(),
            "internal error, token can only be bound to one object type"
        );
    }

    #[test]
    fn audience_and_dates_accept_upstream_variants() {
        let c: Claims = serde_json::from_str(r#"{"aud":"one","exp":12.5,"sub":"s"}"#).unwrap();
        assert_eq!(c.aud, vec!["one"]);
        assert_eq!(c.exp, Some(12));
    }

    #[test]
    fn time_validation_has_a_minute_of_leeway() {
        let c = pod_claims(); // nbf = iat = 1000, exp = 4600
        assert_eq!(validate_times(&c, 1000), Ok(()));
        assert_eq!(validate_times(&c, 940), Ok(()));
        assert_eq!(
            validate_times(&c, 939),
            Err("service account token is not valid yet".into())
        );
        assert_eq!(validate_times(&c, 4660), Ok(()));
        assert_eq!(
            validate_times(&c, 4661),
            Err("service account token has expired".into())
        );
        let future = Claims {
            iat: Some(2000),
            ..Default::default()
        };
        assert_eq!(
            validate_times(&future, 1000),
            Err("service account token is issued in the future".into())
        );
    }

    #[test]
    fn user_of_a_pod_bound_token() {
        let info = ServiceAccountInfo {
            namespace: "ns".into(),
            name: "sa".into(),
            uid: "sa-uid".into(),
            pod_name: "p".into(),
            pod_uid: "p-uid".into(),
            node_name: "n1".into(),
            node_uid: String::new(),
            credential_id: credential_id_for_jti("abc"),
        };
        let u = info.user();
        assert_eq!(u.name, "system:serviceaccount:ns:sa");
        assert_eq!(u.uid, "sa-uid");
        assert_eq!(
            u.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:ns"]
        );
        let keys: Vec<&str> = u.extra.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![CREDENTIAL_ID_KEY, NODE_NAME_KEY, POD_NAME_KEY, POD_UID_KEY]
        );
        assert_eq!(u.extra[CREDENTIAL_ID_KEY], vec!["JTI=abc"]);
        assert_eq!(credential_id_for_jti(""), "");
    }
}
