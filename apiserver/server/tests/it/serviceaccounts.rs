//! Service account tokens end to end: TokenRequest, bearer authentication as the account,
//! bound-object invalidation, TokenReview, and ServiceAccount admission of pods.

use crate::{Server, start};
use base64::Engine;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A server issuing tokens with the test key pair, with ServiceAccount admission on.
async fn token_server(extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sa.key");
    let pub_ = dir.path().join("sa.pub");
    std::fs::write(&key, include_str!("testdata/rsa.key")).unwrap();
    std::fs::write(&pub_, include_str!("testdata/rsa.pub")).unwrap();
    let mut args = vec![
        format!("--service-account-issuer={ISSUER}"),
        format!("--service-account-signing-key-file={}", key.display()),
        format!("--service-account-key-file={}", pub_.display()),
        "--disable-admission-plugins=".to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    (start(&refs).await, dir)
}

async fn bearer(
    s: &Server,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = s
        .http
        .request(m, s.url(path))
        .header("Authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let resp = r.send().await.unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap_or(Value::Null))
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn create_sa(s: &Server, ns: &str, body: Value) -> Value {
    let (code, sa) = s
        .post(&format!("/api/v1/namespaces/{ns}/serviceaccounts"), body)
        .await;
    assert_eq!(code, 201, "{sa}");
    sa
}

async fn request_token(s: &Server, ns: &str, sa: &str, spec: Value) -> (u16, Value) {
    s.post(
        &format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}),
    )
    .await
}

fn pod(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

/// Waits until a request with `token` gets `code` (the watch cache catches up with deletes).
async fn until_code(s: &Server, token: &str, code: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (got, body) = bearer(
            s,
            "GET",
            "/api/v1/namespaces/default/configmaps",
            token,
            None,
        )
        .await;
        if got == code {
            return;
        }
        assert!(Instant::now() < deadline, "still {got}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn token_request_authenticates_as_the_service_account() {
    let (s, _keys) = token_server(&[]).await;
    let sa = create_sa(&s, "default", json!({"metadata": {"name": "default"}})).await;
    let sa_uid = sa["metadata"]["uid"].as_str().unwrap();

    // Discovery lists the subresource as upstream's aggregated discovery does.
    let (_, v1) = s.get("/api/v1").await;
    let token_res = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .cloned()
        .unwrap();
    assert_eq!(token_res["verbs"], json!(["create"]));
    assert_eq!(token_res["kind"], "TokenRequest");
    assert_eq!(token_res["group"], "authentication.k8s.io");
    assert_eq!(token_res["version"], "v1");
    let agg: Value = s
        .http
        .get(s.url("/api"))
        .header(
            "Accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sa_res = agg["items"][0]["versions"][0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "serviceaccounts")
        .cloned()
        .unwrap();
    assert_eq!(
        sa_res["subresources"],
        json!([{"subresource": "token", "verbs": ["create"],
            "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}}])
    );

    let (_, openapi) = s.get("/openapi/v3/api/v1").await;
    let post =
        &openapi["paths"]["/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"]["post"];
    assert_eq!(
        post["operationId"],
        "createCoreV1NamespacedServiceAccountToken"
    );
    assert_eq!(
        post["requestBody"]["content"]["*/*"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.authentication.v1.TokenRequest"
    );

    let (code, tr) = request_token(&s, "default", "default", json!({})).await;
    assert_eq!(code, 201, "{tr}");
    assert_eq!(tr["kind"], "TokenRequest");
    assert_eq!(tr["metadata"]["uid"], sa_uid);
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    assert_eq!(tr["spec"]["audiences"], json!([ISSUER]));
    let token = tr["status"]["token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["sub"], "system:serviceaccount:default:default");
    assert_eq!(c["aud"], json!([ISSUER]));
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(c["nbf"], c["iat"]);
    assert_eq!(
        c["kubernetes.io"],
        json!({"namespace": "default", "serviceaccount": {"name": "default", "uid": sa_uid}})
    );
    let exp = jiff::Timestamp::from_second(c["exp"].as_i64().unwrap()).unwrap();
    assert_eq!(
        tr["status"]["expirationTimestamp"],
        exp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    );

    // The token is a credential: requests with it run as the service account.
    let (code, _) = bearer(
        &s,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        token,
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (code, review) = bearer(
        &s,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        token,
        Some(json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})),
    )
    .await;
    assert_eq!(code, 201, "{review}");
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:default:default");
    assert_eq!(user["uid"], sa_uid);
    assert_eq!(
        user["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={}", c["jti"].as_str().unwrap())])
    );

    // Invalid tokens are refused, not anonymous.
    assert_eq!(
        bearer(&s, "GET", "/api/v1/namespaces", "garbage", None)
            .await
            .0,
        401
    );
    let forged = {
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut body = c.clone();
        body["sub"] = "system:serviceaccount:kube-system:admin".into();
        let enc = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&body).unwrap());
        parts[1] = &enc;
        parts.join(".")
    };
    assert_eq!(
        bearer(&s, "GET", "/api/v1/namespaces", &forged, None)
            .await
            .0,
        401
    );

    // Deleting the account revokes its tokens.
    s.delete("/api/v1/namespaces/default/serviceaccounts/default")
        .await;
    until_code(&s, token, 401).await;
}

#[tokio::test]
async fn token_request_validation_and_errors() {
    let (s, _keys) = token_server(&["--service-account-max-token-expiration=2h"]).await;
    create_sa(&s, "default", json!({"metadata": {"name": "runner"}})).await;
    let (code, e) = request_token(&s, "default", "runner", json!({"expirationSeconds": 60})).await;
    assert_eq!(code, 422, "{e}");
    assert_eq!(
        e["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let (code, e) = request_token(&s, "default", "nope", json!({})).await;
    assert_eq!(code, 404);
    assert_eq!(e["message"], "serviceaccounts \"nope\" not found");
    // Longer than the maximum: shortened, with a warning.
    let resp = s
        .http
        .post(s.url("/api/v1/namespaces/default/serviceaccounts/runner/token"))
        .header("Content-Type", "application/json")
        .body(r#"{"spec": {"expirationSeconds": 86400}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let warning = resp.headers()["warning"].to_str().unwrap().to_string();
    assert!(
        warning.contains("requested expiration of 86400 seconds shortened to 7200 seconds"),
        "{warning}"
    );
    let tr: Value = resp.json().await.unwrap();
    assert_eq!(tr["spec"]["expirationSeconds"], 7200);
    let c = claims(tr["status"]["token"].as_str().unwrap());
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        7200
    );
    // Bound objects must exist, match by uid, and be of a supported kind.
    let bind = |kind: &str, name: &str, uid: Option<&str>| {
        let mut r = json!({"apiVersion": "v1", "kind": kind, "name": name});
        if let Some(u) = uid {
            r["uid"] = u.into();
        }
        json!({"boundObjectRef": r})
    };
    let (code, e) = request_token(&s, "default", "runner", bind("Pod", "ghost", None)).await;
    assert_eq!(
        (code, e["message"].as_str()),
        (404, Some("pods \"ghost\" not found"))
    );
    let (code, secret) = s
        .post(
            "/api/v1/namespaces/default/secrets",
            json!({"metadata": {"name": "s"}}),
        )
        .await;
    assert_eq!(code, 201);
    let (code, e) =
        request_token(&s, "default", "runner", bind("Secret", "s", Some("wrong"))).await;
    assert_eq!(code, 409, "{e}");
    assert_eq!(
        e["message"],
        "Operation cannot be fulfilled on Secret \"s\": the UID in the bound object reference (wrong) does not match the UID in record. The object might have been deleted and then recreated"
    );
    let (code, e) = request_token(
        &s,
        "default",
        "runner",
        json!({"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        e["message"],
        "cannot bind token to object of type apps/v1, Kind=Deployment"
    );
    // A secret-bound token dies with its secret.
    let uid = secret["metadata"]["uid"].as_str().unwrap();
    let (code, tr) = request_token(&s, "default", "runner", bind("Secret", "s", Some(uid))).await;
    assert_eq!(code, 201, "{tr}");
    let token = tr["status"]["token"].as_str().unwrap();
    assert_eq!(
        claims(token)["kubernetes.io"]["secret"],
        json!({"name": "s", "uid": uid})
    );
    until_code(&s, token, 200).await;
    s.delete("/api/v1/namespaces/default/secrets/s").await;
    until_code(&s, token, 401).await;
}

#[tokio::test]
async fn pod_bound_tokens_and_token_review() {
    let (s, _keys) = token_server(&[]).await;
    create_sa(&s, "default", json!({"metadata": {"name": "default"}})).await;
    create_sa(&s, "default", json!({"metadata": {"name": "other"}})).await;
    let (code, p) = s.post("/api/v1/namespaces/default/pods", pod("p")).await;
    assert_eq!(code, 201, "{p}");
    let pod_uid = p["metadata"]["uid"].as_str().unwrap();
    let bound = json!({"expirationSeconds": 3607,
        "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": pod_uid}});
    let (code, e) = request_token(&s, "default", "other", bound.clone()).await;
    assert_eq!(code, 400);
    assert_eq!(
        e["message"],
        "cannot bind token for serviceaccount \"other\" to pod running with different serviceaccount name."
    );
    let (code, tr) = request_token(&s, "default", "default", bound).await;
    assert_eq!(code, 201, "{tr}");
    let token = tr["status"]["token"].as_str().unwrap();
    let c = claims(token);
    // The kubelet's 3607 s token lives a year; clients see the requested expiry.
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 365 * 24 * 3600);
    assert_eq!(
        c["kubernetes.io"]["warnafter"].as_i64().unwrap() - iat,
        3607
    );
    let reported = tr["status"]["expirationTimestamp"].as_str().unwrap();
    let reported: jiff::Timestamp = reported.parse().unwrap();
    assert_eq!(reported.as_second() - iat, 3607);
    assert_eq!(
        c["kubernetes.io"]["pod"],
        json!({"name": "p", "uid": pod_uid})
    );

    // TokenReview answers with the same authenticator.
    let review = |token: &str, audiences: Option<Value>| {
        let mut spec = json!({"token": token});
        if let Some(a) = audiences {
            spec["audiences"] = a;
        }
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
    };
    let (code, r) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            review(token, None),
        )
        .await;
    assert_eq!(code, 201, "{r}");
    let st = &r["status"];
    assert_eq!(st["authenticated"], true);
    assert_eq!(st["audiences"], json!([ISSUER]));
    assert_eq!(
        st["user"]["username"],
        "system:serviceaccount:default:default"
    );
    assert_eq!(
        st["user"]["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["p"])
    );
    assert_eq!(
        st["user"]["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([pod_uid])
    );
    let (_, r) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            review(token, Some(json!(["vault"]))),
        )
        .await;
    assert_eq!(r["status"]["authenticated"], Value::Null);
    assert_eq!(
        r["status"]["error"],
        format!("token audiences [\"{ISSUER}\"] is invalid for the target audiences [\"vault\"]")
    );
    let (_, r) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            review("garbage", None),
        )
        .await;
    assert_eq!(r["status"]["error"], "invalid bearer token");
    let (code, _) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            review("", None),
        )
        .await;
    assert_eq!(code, 400);

    // Deleting the pod invalidates its tokens.
    until_code(&s, token, 200).await;
    let (code, _) = s.delete("/api/v1/namespaces/default/pods/p").await;
    assert_eq!(code, 200);
    until_code(&s, token, 401).await;
    let (_, r) = s
        .post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            review(token, None),
        )
        .await;
    assert_eq!(
        r["status"]["error"],
        "service account token has been invalidated"
    );
}

#[tokio::test]
async fn service_account_admission_mounts_api_access() {
    let (s, _keys) = token_server(&[]).await;
    create_sa(
        &s,
        "default",
        json!({"metadata": {"name": "default"},
        "imagePullSecrets": [{"name": "regcred"}]}),
    )
    .await;
    create_sa(
        &s,
        "default",
        json!({"metadata": {"name": "quiet"}, "automountServiceAccountToken": false}),
    )
    .await;
    let mut p = pod("mounted");
    p["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
    let (code, p) = s.post("/api/v1/namespaces/default/pods", p).await;
    assert_eq!(code, 201, "{p}");
    let spec = &p["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["imagePullSecrets"], json!([{"name": "regcred"}]));
    let vol = &spec["volumes"][0];
    let name = vol["name"].as_str().unwrap();
    assert!(
        name.starts_with("kube-api-access-") && name.len() == 21,
        "{name}"
    );
    assert_eq!(vol["projected"]["defaultMode"], 420);
    assert_eq!(
        vol["projected"]["sources"][0],
        json!({"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}})
    );
    let mount = json!([{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": name, "readOnly": true}]);
    assert_eq!(spec["containers"][0]["volumeMounts"], mount);
    assert_eq!(spec["initContainers"][0]["volumeMounts"], mount);

    // automountServiceAccountToken: the pod's choice wins over the account's.
    let mut quiet = pod("quiet");
    quiet["spec"]["serviceAccountName"] = "quiet".into();
    let (code, q) = s
        .post("/api/v1/namespaces/default/pods", quiet.clone())
        .await;
    assert_eq!(code, 201, "{q}");
    assert!(q["spec"]["volumes"].is_null(), "{q}");
    assert!(q["spec"]["containers"][0]["volumeMounts"].is_null());
    quiet["metadata"]["name"] = "loud".into();
    quiet["spec"]["automountServiceAccountToken"] = true.into();
    let (_, l) = s.post("/api/v1/namespaces/default/pods", quiet).await;
    assert_eq!(l["spec"]["volumes"].as_array().map(Vec::len), Some(1));
    let mut off = pod("off");
    off["spec"]["automountServiceAccountToken"] = false.into();
    let (_, o) = s.post("/api/v1/namespaces/default/pods", off).await;
    assert!(o["spec"]["volumes"].is_null(), "{o}");

    // The account must exist: upstream's Forbidden, after retrying for `default`.
    let (code, _) = s
        .post("/api/v1/namespaces", json!({"metadata": {"name": "fresh"}}))
        .await;
    assert_eq!(code, 201);
    let t = Instant::now();
    let (code, e) = s.post("/api/v1/namespaces/fresh/pods", pod("early")).await;
    assert_eq!(code, 403, "{e}");
    assert_eq!(
        e["message"],
        "pods \"early\" is forbidden: error looking up service account fresh/default: serviceaccount \"default\" not found"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    let mut named = pod("named");
    named["spec"]["serviceAccountName"] = "missing".into();
    let (code, e) = s.post("/api/v1/namespaces/fresh/pods", named).await;
    assert_eq!(code, 403);
    assert_eq!(
        e["message"],
        "pods \"named\" is forbidden: error looking up service account fresh/missing: serviceaccount \"missing\" not found"
    );
    // A `default` account created while the pod waits is found.
    let s2 = s.http.clone();
    let url = s.url("/api/v1/namespaces/fresh/serviceaccounts");
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = s2
            .post(url)
            .header("Content-Type", "application/json")
            .body(r#"{"metadata": {"name": "default"}}"#)
            .send()
            .await;
    });
    let (code, p) = s.post("/api/v1/namespaces/fresh/pods", pod("later")).await;
    assert_eq!(code, 201, "{p}");
}
