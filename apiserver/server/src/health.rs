//! `/healthz`, `/livez`, `/readyz` (with `?verbose`), `/version` and `/metrics` in Prometheus
//! text format (mirrors apiserver/pkg/server/healthz and the legacy metrics registry).

use crate::state::AppState;
use std::fmt::Write;

/// (status code, body) of a health endpoint.
pub fn check(state: &AppState, path: &str, verbose: bool) -> (u16, String) {
    let mut checks: Vec<(&str, bool)> = vec![
        ("ping", true),
        ("log", true),
        ("etcd", state.caches.is_ready()),
    ];
    if path.starts_with("/readyz") {
        checks.push(("informer-sync", state.caches.is_ready()));
        checks.push(("poststarthook/bootstrap-controller", state.is_ready()));
    }
    let ok = checks.iter().all(|(_, ok)| *ok);
    let name = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("healthz");
    if verbose || !ok {
        let mut s = String::new();
        for (c, ok) in &checks {
            let _ = writeln!(
                s,
                "[{}]{} {}",
                if *ok { "+" } else { "-" },
                c,
                if *ok { "ok" } else { "failed: not ready" }
            );
        }
        let _ = write!(s, "{name} check {}", if ok { "passed" } else { "failed" });
        (if ok { 200 } else { 500 }, s)
    } else {
        (200, "ok".into())
    }
}

pub fn version() -> serde_json::Value {
    serde_json::json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "36",
        "gitVersion": "v1.37.0",
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

pub fn metrics(state: &AppState) -> String {
    let mut s = String::new();
    s.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n");
    s.push_str("# TYPE apiserver_request_total counter\n");
    let counts = state
        .request_counts
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    for ((verb, resource, code), n) in counts {
        let _ = writeln!(
            s,
            "apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {n}"
        );
    }
    s.push_str("# HELP apiserver_storage_revision The revision the watch cache has observed.\n");
    s.push_str("# TYPE apiserver_storage_revision gauge\n");
    let _ = writeln!(s, "apiserver_storage_revision {}", state.caches.revision());
    state.request_durations.render(
        "apiserver_request_duration_seconds",
        "Response latency distribution in seconds for each verb and resource.",
        &mut s,
    );
    state.etcd_durations.render(
        "etcd_request_duration_seconds",
        "Etcd request latency in seconds for each operation and object type.",
        &mut s,
    );
    crate::streaming::render_metrics(&mut s);
    apiserver_registry::metrics::render(&mut s);
    s
}
