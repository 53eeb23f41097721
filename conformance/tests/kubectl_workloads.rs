//! The kubectl workflows issue 3 is checked with, typed as a user would: create a deployment,
//! scale it, change its image and wait for the rollout, undo it, delete it.

use conformance::Kubectl;
use conformance::fakenode::ensure_fake_nodes;
use std::time::Duration;

fn pods_of(k: &Kubectl, ns: &str) -> Vec<String> {
    let out = k.ok(&[
        "-n",
        ns,
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test]
async fn kubectl_deployment_scale_set_image_rollout_undo_delete() {
    ensure_fake_nodes().await;
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-workloads");
    let n = ns.name.as_str();
    k.ok(&[
        "-n",
        n,
        "create",
        "deployment",
        "web",
        "--image=httpd:1",
        "--replicas=2",
    ]);
    k.ok(&[
        "-n",
        n,
        "rollout",
        "status",
        "deployment/web",
        "--timeout=90s",
    ]);
    assert_eq!(pods_of(&k, n).len(), 2);

    k.ok(&["-n", n, "scale", "deployment/web", "--replicas=4"]);
    k.ok(&[
        "-n",
        n,
        "rollout",
        "status",
        "deployment/web",
        "--timeout=90s",
    ]);
    wait("4 pods", || pods_of(&k, n).len() == 4);
    k.ok(&["-n", n, "scale", "deployment/web", "--replicas=3"]);
    wait("3 pods", || pods_of(&k, n).len() == 3);

    k.ok(&["-n", n, "set", "image", "deployment/web", "httpd=httpd:2"]);
    let out = k.ok(&[
        "-n",
        n,
        "rollout",
        "status",
        "deployment/web",
        "--timeout=90s",
    ]);
    assert!(out.contains("successfully rolled out"), "{out}");
    wait("3 pods on httpd:2", || {
        let p = pods_of(&k, n);
        p.len() == 3 && p.iter().all(|l| l.ends_with("=httpd:2"))
    });
    let history = k.ok(&["-n", n, "rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");

    k.ok(&["-n", n, "rollout", "undo", "deployment/web"]);
    k.ok(&[
        "-n",
        n,
        "rollout",
        "status",
        "deployment/web",
        "--timeout=90s",
    ]);
    wait("3 pods back on httpd:1", || {
        let p = pods_of(&k, n);
        p.len() == 3 && p.iter().all(|l| l.ends_with("=httpd:1"))
    });
    let rs = k.ok(&["-n", n, "get", "rs", "-o", "name"]);
    assert_eq!(
        rs.lines().count(),
        2,
        "the undo reused the first ReplicaSet: {rs}"
    );

    // A pod that cannot fit stays Pending, and describe says why.
    k.ok(&["-n", n, "run", "huge", "--image=httpd:1", "--overrides",
        r#"{"spec":{"containers":[{"name":"huge","image":"httpd:1","resources":{"requests":{"cpu":"1000"}}}]}}"#]);
    wait("FailedScheduling for huge", || {
        k.ok(&["-n", n, "describe", "pod", "huge"])
            .contains("Insufficient cpu")
    });
    assert_eq!(
        k.ok(&[
            "-n",
            n,
            "get",
            "pod",
            "huge",
            "-o",
            "jsonpath={.status.phase}"
        ]),
        "Pending"
    );

    // Deleting the deployment removes its ReplicaSets and pods.
    k.ok(&["-n", n, "delete", "deployment", "web"]);
    wait("ReplicaSets and pods gone", || {
        k.ok(&["-n", n, "get", "rs", "-o", "name"])
            .trim()
            .is_empty()
            && pods_of(&k, n).is_empty()
    });
}
