//! helm 4 driving the cluster the way its users do: a chart made by `helm create`, installed with
//! `--wait`, upgraded, rolled back and uninstalled. helm 4 applies manifests with server-side
//! apply, so this covers field managers on real workloads end to end. Not an upstream e2e test:
//! issue 5 checks these commands by hand; the chart's pods run in real containers here.

use super::*;
use k8s_openapi::api::apps::v1::Deployment;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The image of the chart: busybox's web server on port 80 (`hack/images/build.sh`), because the
/// chart's default (nginx) cannot be pulled here.
const HTTPD: &str = "localhost/busybox-httpd";

/// helm from `$HELM`, else `_output/bin/helm`, with its cache/config/data in `home`.
struct Helm {
    bin: PathBuf,
    home: PathBuf,
}

impl Helm {
    fn new(home: &Path) -> Self {
        let bin = std::env::var_os("HELM")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../_output/bin/helm"));
        Helm {
            bin,
            home: home.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("KUBECONFIG", conformance::kubeconfig_path())
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .current_dir(&self.home)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        let text = format!(
            "helm {} exited {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.run(args);
        assert!(ok, "{text}");
        text
    }
}

#[tokio::test]
async fn helm_create_chart_install_upgrade_history_rollback_uninstall() {
    let (c, ns, pods) = setup("helm").await;
    let home = tempfile::tempdir().unwrap();
    let helm = Helm::new(home.path());
    helm.ok(&["create", "mychart"]);
    let node = format!("nodeSelector.kubernetes\\.io/hostname={}", node_name());
    let image = format!("image.repository={HTTPD},image.tag=1.36");
    let base = [
        "--namespace",
        ns.name.as_str(),
        "--wait",
        "--timeout",
        "90s",
        "--set",
        image.as_str(),
        "--set",
        node.as_str(),
    ];
    let deps: Api<Deployment> = c.ns_api(&ns.name);

    let mut install = vec!["install", "web", "./mychart"];
    install.extend(base);
    let out = helm.ok(&install);
    assert!(out.contains("STATUS: deployed"), "{out}");
    // --wait returned: the Deployment's pod passed its HTTP readiness probe on the real node.
    let d = deps.get("web-mychart").await.unwrap();
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(1));
    let managers: Vec<(String, String)> = d
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("helm".into(), "Apply".into())),
        "helm 4 applies server-side: {managers:?}"
    );
    let running = pods
        .list(&ListParams::default().labels("app.kubernetes.io/instance=web"))
        .await
        .unwrap();
    assert!(
        running.items.iter().any(|p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some()
        }),
        "a running chart pod"
    );

    let mut upgrade = vec!["upgrade", "web", "./mychart", "--set", "replicaCount=2"];
    upgrade.extend(base);
    helm.ok(&upgrade);
    let d = deps.get("web-mychart").await.unwrap();
    assert_eq!(d.spec.replicas, Some(2));
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(2));

    let history = helm.ok(&["history", "web", "--namespace", &ns.name]);
    assert!(history.contains("Install complete"), "{history}");
    assert!(history.contains("Upgrade complete"), "{history}");

    helm.ok(&["rollback", "web", "1", "--namespace", &ns.name, "--wait"]);
    let d = deps.get("web-mychart").await.unwrap();
    assert_eq!(
        d.spec.replicas,
        Some(1),
        "rollback to revision 1 restores one replica"
    );
    let history = helm.ok(&["history", "web", "--namespace", &ns.name]);
    assert!(history.contains("Rollback to 1"), "{history}");

    helm.ok(&["uninstall", "web", "--namespace", &ns.name, "--wait"]);
    poll_until("the release's objects to be gone", TICK, WAIT, || async {
        let gone_dep = deps.get_opt("web-mychart").await.ok()?.is_none();
        let svcs: Api<k8s_openapi::api::core::v1::Service> = c.ns_api(&ns.name);
        let gone_svc = svcs.get_opt("web-mychart").await.ok()?.is_none();
        (gone_dep && gone_svc).then_some(())
    })
    .await;
    let list = helm.ok(&["list", "--namespace", &ns.name, "-q"]);
    assert!(!list.contains("web"), "{list}");
}
