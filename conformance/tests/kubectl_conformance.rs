//! kubectl conformance tests that need no kubelet. Mirrors upstream
//! `test/e2e/kubectl/kubectl.go` ("[sig-cli] Kubectl client ...").

use conformance::Kubectl;
use regex::Regex;

const HTTPD_IMAGE: &str = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4";
const BUSYBOX_IMAGE: &str = "registry.k8s.io/e2e-test-images/busybox:1.37.0-1";

/// Upstream's httpd-deployment3 manifest (a Deployment with the httpd image).
fn httpd_deployment(image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: httpd-deployment
spec:
  selector:
    matchLabels:
      app: httpd
  template:
    metadata:
      labels:
        app: httpd
    spec:
      containers:
      - name: httpd
        image: {image}
        ports:
        - containerPort: 80
"#
    )
}

/// [sig-cli] Kubectl client Kubectl api-versions should check if v1 is in available api
/// versions [Conformance]
#[test]
fn conformance_kubectl_api_versions_has_v1() {
    let k = Kubectl::from_env();
    let out = k.ok(&["api-versions"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines.contains(&"v1"),
        "no v1 in kubectl api-versions:\n{out}"
    );
    assert!(
        lines.contains(&"apps/v1"),
        "no apps/v1 in kubectl api-versions:\n{out}"
    );
}

/// [sig-cli] Kubectl client Kubectl version should check is all data is printed [Conformance]
#[test]
fn conformance_kubectl_version_prints_all_data() {
    let k = Kubectl::from_env();
    let out = k.ok(&["version"]);
    for item in ["Client Version: ", "Server Version: "] {
        let re = Regex::new(&format!(r"{item}v\d\.\d+\.[\d\w\-\.\+]+")).unwrap();
        assert!(
            re.is_match(&out),
            "item {item:?} has no valid version in:\n{out}"
        );
    }
    // The server's version must also parse as JSON with the fields kubectl reads.
    let json = k.ok(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("kubectl version -o json");
    assert_eq!(v["serverVersion"]["major"], "1", "{json}");
    assert!(
        v["serverVersion"]["gitVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("v1.")),
        "{json}"
    );
}

/// [sig-cli] Kubectl client Kubectl diff should check if kubectl diff finds a difference for
/// Deployments [Conformance]
#[test]
fn conformance_kubectl_diff_finds_deployment_difference() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl");
    let live = httpd_deployment(HTTPD_IMAGE);
    k.ok_input(&["-n", &ns.name, "create", "-f", "-"], &live);

    let declared = httpd_deployment(BUSYBOX_IMAGE);
    let out = k.run(&["-n", &ns.name, "diff", "-f", "-"], Some(&declared));
    // kubectl diff: exit 1 means "differences found"; >1 means kubectl or diff failed.
    assert_eq!(
        out.code,
        1,
        "kubectl diff should report a difference\n{}",
        out.describe()
    );
    for image in [HTTPD_IMAGE, BUSYBOX_IMAGE] {
        assert!(
            out.stdout.contains(image),
            "missing {image} in kubectl diff output\n{}",
            out.describe()
        );
    }

    // The diff is a server-side dry run: the live object is unchanged.
    let image = k.ok(&[
        "-n",
        &ns.name,
        "get",
        "deployment",
        "httpd-deployment",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(
        image, HTTPD_IMAGE,
        "kubectl diff must not change the live object"
    );

    k.ok_input(&["-n", &ns.name, "delete", "-f", "-"], &declared);
}
