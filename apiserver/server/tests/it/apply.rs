//! Server-side apply and managedFields through the HTTP API.

use crate::start;
use serde_json::{Value, json};

async fn apply(s: &crate::Server, path: &str, query: &str, body: &str) -> (u16, Value) {
    let r = s
        .http
        .patch(s.url(&format!("{path}?{query}")))
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap_or(Value::Null))
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn server_side_apply_create_prune_conflict_force_and_updates() {
    let s = start(&[]).await;
    let path = "/api/v1/namespaces/default/configmaps/ssa";
    let v1 =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n  b: \"2\"\n";
    // fieldManager is required.
    let (code, st) = apply(&s, path, "", v1).await;
    assert_eq!(code, 400, "{st}");
    // Create on apply.
    let (code, obj) = apply(&s, path, "fieldManager=alice", v1).await;
    assert_eq!(code, 201, "{obj}");
    assert_eq!(managers(&obj), [("alice".to_string(), "Apply".to_string())]);
    assert_eq!(
        obj["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:a": {}, "f:b": {}}})
    );
    // Re-apply without b: b is removed (nobody else owns it).
    let v2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
    let (code, obj) = apply(&s, path, "fieldManager=alice", v2).await;
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["data"], json!({"a": "1"}));
    // Another manager setting a different value conflicts; the same value does not.
    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"9\"\n";
    let (code, st) = apply(&s, path, "fieldManager=bob", other).await;
    assert_eq!(code, 409, "{st}");
    assert_eq!(st["reason"], "Conflict", "{st}");

    assert_eq!(st["details"]["causes"][0]["reason"], "FieldManagerConflict");
    assert_eq!(st["details"]["causes"][0]["field"], ".data.a");
    let same = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
    let (code, _) = apply(&s, path, "fieldManager=bob", same).await;
    assert_eq!(code, 200);
    // Force takes ownership.
    let (code, obj) = apply(&s, path, "fieldManager=bob&force=true", other).await;
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["data"]["a"], "9");
    // force on a non-apply write is refused.
    let (code, _) = s
        .req("PUT", &format!("{path}?force=true"), Some(obj.clone()))
        .await;
    assert_eq!(code, 400);
    // A plain update is tracked as an Update by the User-Agent's manager.
    let mut edited = obj.clone();
    edited["data"]["c"] = json!("3");
    let r = s
        .http
        .put(s.url(path))
        .header("User-Agent", "kubectl-edit/v1.37.1 (linux/amd64)")
        .json(&edited)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let obj: Value = r.json().await.unwrap();
    assert!(
        managers(&obj).contains(&("kubectl-edit".to_string(), "Update".to_string())),
        "{:?}",
        managers(&obj)
    );
    // Dry-run apply changes nothing.
    let v3 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  z: \"0\"\n";
    let (code, dry) = apply(&s, path, "fieldManager=carol&dryRun=All", v3).await;
    assert_eq!(code, 200, "{dry}");
    assert_eq!(dry["data"]["z"], "0");
    let (_, live) = s.req("GET", path, None).await;
    assert!(live["data"].get("z").is_none());
}

#[tokio::test]
async fn apply_with_duplicate_keys_strict_is_400_warn_is_a_warning() {
    let s = start(&[]).await;
    let path = "/api/v1/namespaces/default/configmaps/dupes";
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dupes\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let (code, st) = apply(&s, path, "fieldManager=m&fieldValidation=Strict", body).await;
    assert_eq!(code, 400, "{st}");
    assert_eq!(st["reason"], "BadRequest", "{st}");
    assert_eq!(
        st["message"],
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"
    );
    // Nothing was created.
    let r = s.http.get(s.url(path)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // Warn (the default): applied with the last value, and a Warning header.
    let r = s
        .http
        .patch(s.url(&format!("{path}?fieldManager=m")))
        .header("Content-Type", "application/apply-patch+yaml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let warning = r
        .headers()
        .get("Warning")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(
        warning.contains(r#"line 7: key \"a\" already set in map"#),
        "{warning}"
    );
    let obj: Value = r.json().await.unwrap();
    assert_eq!(obj["data"], json!({"a": "2"}));
    // Ignore: no check at all.
    let (code, _) = apply(&s, path, "fieldManager=m&fieldValidation=Ignore", body).await;
    assert_eq!(code, 200);
}
