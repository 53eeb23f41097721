//! Signing and verifying service account JWTs (mirrors pkg/serviceaccount/jwt.go): the token
//! generator of the first issuer, and the signature, issuer and audience checks of
//! `jwtTokenAuthenticator` (the claims' own validation is in `authenticator.rs`).

use super::claims::Claims;
use super::keys::{SigningKey, VerifyingKey};
use base64::Engine;
use jsonwebtoken::{Header, Validation};
use std::collections::HashSet;

/// Signs tokens as the first `--service-account-issuer`.
pub struct TokenGenerator {
    pub issuer: String,
    pub key: SigningKey,
}

impl TokenGenerator {
    /// A compact JWS of `claims` with `iss` set to the issuer; the header carries `alg` and
    /// `kid` only.
    pub fn generate(&self, claims: &Claims) -> Result<String, String> {
        let mut claims = claims.clone();
        claims.iss = self.issuer.clone();
        let mut header = Header::new(self.key.alg);
        header.typ = None;
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key.key).map_err(|e| e.to_string())
    }
}

/// Verifies tokens of the accepted issuers against the public keys.
pub struct JwtAuthenticator {
    pub issuers: HashSet<String>,
    pub keys: Vec<VerifyingKey>,
    /// `--api-audiences`.
    pub implicit_audiences: Vec<String>,
}

/// Go's `%q` of a string list: `["a" "b"]`.
pub(crate) fn quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", items.join(" "))
}

/// Upstream's error aggregate: one message as is, several (deduplicated) in brackets.
fn aggregate(errs: Vec<String>) -> String {
    let mut seen = HashSet::new();
    let unique: Vec<String> = errs
        .into_iter()
        .filter(|e| seen.insert(e.clone()))
        .collect();
    if unique.len() == 1 {
        unique.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", unique.join(", "))
    }
}

const CRYPTO_ERROR: &str = "go-jose/go-jose: error in cryptographic primitive";

impl JwtAuthenticator {
    /// Whether `token` is a compact JWT whose (unverified) `iss` is an accepted issuer.
    fn has_correct_issuer(&self, token: &str) -> bool {
        if token.trim_start().starts_with('{') {
            return false;
        }
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return false;
        }
        let Ok(payload) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]) else {
            return false;
        };
        #[derive(serde::Deserialize)]
        struct Iss {
            #[serde(default)]
            iss: String,
        }
        serde_json::from_slice::<Iss>(&payload).is_ok_and(|c| self.issuers.contains(&c.iss))
    }

    /// Verifies `token`: Ok(None) when it is not a token of these issuers (another
    /// authenticator's), Err when it is one but invalid, else its claims and the audiences it is
    /// valid for. `requested` audiences default to the implicit (API) audiences.
    pub fn verify(
        &self,
        token: &str,
        requested: Option<&[String]>,
    ) -> Result<Option<(Claims, Vec<String>)>, String> {
        if !self.has_correct_issuer(token) {
            return Ok(None);
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return Ok(None);
        };
        let kid = header.kid.unwrap_or_default();
        let keys: Vec<&VerifyingKey> = self
            .keys
            .iter()
            .filter(|k| kid.is_empty() || k.kid == kid)
            .collect();
        if keys.is_empty() {
            return Err("invalid signature, no keys found".into());
        }
        let mut errs = Vec::new();
        let mut claims = None;
        for key in keys {
            let mut v = Validation::new(header.alg);
            v.algorithms = key.algorithms.clone();
            v.validate_exp = false;
            v.validate_nbf = false;
            v.validate_aud = false;
            v.required_spec_claims = HashSet::new();
            match jsonwebtoken::decode::<Claims>(token, &key.key, &v) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(e) => errs.push(match e.kind() {
                    jsonwebtoken::errors::ErrorKind::Json(j) => j.to_string(),
                    _ => CRYPTO_ERROR.to_string(),
                }),
            }
        }
        let Some(claims) = claims else {
            return Err(aggregate(errs));
        };
        if !self.issuers.contains(&claims.iss) {
            return Err(format!("token issuer {:?} is invalid", claims.iss));
        }
        let token_audiences = if claims.aud.is_empty() {
            // Only API audiences are allowed for legacy tokens.
            self.implicit_audiences.clone()
        } else {
            claims.aud.clone()
        };
        let requested = requested.unwrap_or(&self.implicit_audiences);
        let audiences: Vec<String> = token_audiences
            .iter()
            .filter(|a| requested.contains(a))
            .cloned()
            .collect();
        if audiences.is_empty() && !self.implicit_audiences.is_empty() {
            return Err(format!(
                "token audiences {} is invalid for the target audiences {}",
                quoted_list(&token_audiences),
                quoted_list(requested)
            ));
        }
        Ok(Some((claims, audiences)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::claims::{Binding, Ref, new_claims};
    use super::super::keys::{signing_key_from_pem, verifying_keys_from_pem};
    use super::*;

    const RSA_KEY: &str = include_str!("testdata/rsa.key");
    const RSA_PUB: &str = include_str!("testdata/rsa.pub");
    const EC_KEY: &str = include_str!("testdata/ec.key");
    const EC_PUB: &str = include_str!("testdata/ec.pub");
    const ISS: &str = "https://kubernetes.default.svc.cluster.local";

    fn claims(aud: &[&str]) -> Claims {
        new_claims(
            "default",
            Ref::new("default", "uid-1"),
            Binding::default(),
            3600,
            0,
            aud.iter().map(|s| s.to_string()).collect(),
            1_700_000_000,
            "jti-1".into(),
        )
        .unwrap()
    }

    fn generator(pem: &str, issuer: &str) -> TokenGenerator {
        TokenGenerator {
            issuer: issuer.into(),
            key: signing_key_from_pem(pem.as_bytes()).unwrap(),
        }
    }

    fn authenticator(pubs: &str, issuers: &[&str], auds: &[&str]) -> JwtAuthenticator {
        JwtAuthenticator {
            issuers: issuers.iter().map(|s| s.to_string()).collect(),
            keys: verifying_keys_from_pem(pubs.as_bytes()).unwrap(),
            implicit_audiences: auds.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn part(token: &str, i: usize) -> serde_json::Value {
        let p = token.split('.').nth(i).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn rs256_and_es256_tokens_carry_alg_kid_and_issuer() {
        let t = generator(RSA_KEY, ISS).generate(&claims(&[ISS])).unwrap();
        assert_eq!(
            part(&t, 0),
            serde_json::json!({"alg": "RS256", "kid": "dA7p4fYAFr6VPHkW1uqFim12SCEILoRHtU1tukdOQb0"})
        );
        assert_eq!(part(&t, 1)["iss"], ISS);
        let a = authenticator(RSA_PUB, &[ISS], &[ISS]);
        let (c, auds) = a.verify(&t, None).unwrap().unwrap();
        assert_eq!(c.sub, "system:serviceaccount:default:default");
        assert_eq!(auds, vec![ISS]);

        let e = generator(EC_KEY, ISS).generate(&claims(&[ISS])).unwrap();
        assert_eq!(part(&e, 0)["alg"], "ES256");
        let both = format!("{RSA_PUB}{EC_PUB}");
        assert!(
            authenticator(&both, &[ISS], &[ISS])
                .verify(&e, None)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn other_issuers_and_garbage_are_not_ours() {
        let a = authenticator(RSA_PUB, &[ISS], &[ISS]);
        let t = generator(RSA_KEY, "https://elsewhere")
            .generate(&claims(&[ISS]))
            .unwrap();
        assert_eq!(a.verify(&t, None), Ok(None));
        assert_eq!(a.verify("not-a-jwt", None), Ok(None));
        assert_eq!(a.verify("{\"iss\":\"x\"}", None), Ok(None));
        // A second accepted issuer also verifies.
        let two = authenticator(RSA_PUB, &[ISS, "https://elsewhere"], &[ISS]);
        assert!(two.verify(&t, None).unwrap().is_some());
    }

    #[test]
    fn wrong_key_tampering_and_audiences_fail() {
        let t = generator(RSA_KEY, ISS).generate(&claims(&[ISS])).unwrap();
        // Verified by an unrelated key: the kid matches none.
        let ec_only = authenticator(EC_PUB, &[ISS], &[ISS]);
        assert_eq!(
            ec_only.verify(&t, None),
            Err("invalid signature, no keys found".into())
        );
        // A modified payload no longer verifies.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut body = part(&t, 1);
        body["sub"] = "system:serviceaccount:kube-system:admin".into();
        parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&body).unwrap());
        let forged = parts.join(".");
        let a = authenticator(RSA_PUB, &[ISS], &[ISS]);
        assert_eq!(a.verify(&forged, None), Err(CRYPTO_ERROR.into()));
        // Audiences must intersect the requested ones.
        let vault = generator(RSA_KEY, ISS)
            .generate(&claims(&["vault"]))
            .unwrap();
        assert_eq!(
            a.verify(&vault, None),
            Err(format!(
                "token audiences [\"vault\"] is invalid for the target audiences [\"{ISS}\"]"
            ))
        );
        let wanted = vec!["vault".to_string()];
        let (_, auds) = a.verify(&vault, Some(&wanted)).unwrap().unwrap();
        assert_eq!(auds, wanted);
        // A token without audiences is valid for the API audiences.
        let none = generator(RSA_KEY, ISS).generate(&claims(&[])).unwrap();
        assert_eq!(a.verify(&none, None).unwrap().unwrap().1, vec![ISS]);
    }

    #[test]
    fn aggregates_like_upstream() {
        assert_eq!(aggregate(vec!["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(vec!["a".into(), "b".into()]), "[a, b]");
        assert_eq!(quoted_list(&["x".into(), "y".into()]), "[\"x\" \"y\"]");
    }
}
