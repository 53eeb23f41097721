//! Everyday kubectl use against the server, not tied to one upstream test: create, get (server
//! side tables with upstream's columns), apply, explain, auth, get -w, delete, label, scale.
//! Expected outputs follow kubectl 1.37 against an upstream kube-apiserver.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use conformance::Kubectl;
use serde_json::Value;

fn json(k: &Kubectl, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    let out = k.ok(&full);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {args:?} -o json: {e}\n{out}"))
}

/// The header and the row for `name` of `kubectl get` table output, split into columns.
fn table_row(out: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let mut lines = out.lines();
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no table header in:\n{out}"));
    let header: Vec<String> = header.split_whitespace().map(str::to_string).collect();
    let row = lines
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .find(|cols| cols.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{out}"));
    (header, row)
}

fn assert_header(out: &str, name: &str, want: &[&str]) -> Vec<String> {
    let (header, row) = table_row(out, name);
    assert_eq!(header, want, "columns of:\n{out}");
    assert_eq!(
        row.len(),
        want.len(),
        "row for {name} has {} cells:\n{out}",
        row.len()
    );
    row
}

/// kubectl create namespace / configmap / secret / deployment / -f (kubectl sends typed objects
/// as protobuf where it can), and AlreadyExists on a second create.
#[test]
fn kubectl_create_objects() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-create");
    let n = ns.name.as_str();

    let out = k.ok(&[
        "-n",
        n,
        "create",
        "configmap",
        "cm1",
        "--from-literal=a=b",
        "--from-literal=c=d",
    ]);
    assert_eq!(out.trim(), "configmap/cm1 created");
    let out = k.ok(&[
        "-n",
        n,
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=k=v",
    ]);
    assert_eq!(out.trim(), "secret/s1 created");
    // kubectl's typed create clients speak protobuf: request and response bodies both.
    let args = [
        "-n",
        n,
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
        "--port=80",
        "-v=8",
    ];
    let out = k.run(&args, None);
    assert!(out.success(), "{}", out.describe());
    assert_eq!(out.stdout.trim(), "deployment.apps/web created");
    let (request, response) = out.stderr.split_once("\"Response\"").unwrap_or_default();
    let proto = "Content-Type: application/vnd.kubernetes.protobuf";
    assert!(
        request.contains(proto),
        "create should send protobuf:\n{}",
        out.stderr
    );
    assert!(
        response.contains(proto),
        "create should be answered in protobuf:\n{}",
        out.stderr
    );
    let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: robot\n";
    let out = k.ok_input(&["-n", n, "create", "-f", "-"], sa);
    assert_eq!(out.trim(), "serviceaccount/robot created");

    let cm = json(&k, &["-n", n, "get", "configmap", "cm1"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "c": "d"}));
    let secret = json(&k, &["-n", n, "get", "secret", "s1"]);
    assert_eq!(secret["data"]["k"], "dg==");
    assert_eq!(secret["type"], "Opaque");
    let d = json(&k, &["-n", n, "get", "deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    // Defaulting ran on the server.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);

    // The create subcommands wrap the server's error; create -f prints it with its reason.
    let again = k.run(
        &["-n", n, "create", "configmap", "cm1", "--from-literal=a=b"],
        None,
    );
    assert_eq!(again.code, 1, "{}", again.describe());
    let want = r#"error: failed to create configmap: configmaps "cm1" already exists"#;
    assert!(again.stderr.contains(want), "{}", again.describe());
    let again = k.run(&["-n", n, "create", "-f", "-"], Some(sa));
    assert_eq!(again.code, 1, "{}", again.describe());
    let want = r#"Error from server (AlreadyExists): error when creating "STDIN": serviceaccounts "robot" already exists"#;
    assert!(again.stderr.contains(want), "{}", again.describe());
}

/// kubectl get prints the server's tables with upstream's columns.
#[test]
fn kubectl_get_tables_have_upstream_columns() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-get");
    let n = ns.name.as_str();
    k.ok(&[
        "-n",
        n,
        "create",
        "configmap",
        "cm1",
        "--from-literal=a=b",
        "--from-literal=c=d",
    ]);
    k.ok(&[
        "-n",
        n,
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    k.ok(&[
        "-n",
        n,
        "run",
        "p1",
        "--image=nginx:1.27",
        "--restart=Never",
    ]);
    k.ok(&[
        "-n",
        n,
        "create",
        "service",
        "clusterip",
        "svc1",
        "--tcp=80:8080",
    ]);

    let row = assert_header(
        &k.ok(&["-n", n, "get", "configmaps"]),
        "cm1",
        &["NAME", "DATA", "AGE"],
    );
    assert_eq!(row[1], "2");

    let out = k.ok(&["-n", n, "get", "deployments"]);
    let row = assert_header(
        &out,
        "web",
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
    );
    // The controllers are running: the numbers move, their shape does not.
    assert!(row[1].ends_with("/2"), "READY is ready/desired: {out}");
    for cell in &row[2..4] {
        let v: u32 = cell.parse().unwrap_or_else(|_| panic!("a count: {out}"));
        assert!(v <= 2, "{out}");
    }

    let out = k.ok(&["-n", n, "get", "deployments", "-o", "wide"]);
    let want = [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "AGE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ];
    let row = assert_header(&out, "web", &want);
    assert_eq!(row[5..], ["nginx", "nginx:1.27", "app=web"], "{out}");

    let out = k.ok(&["-n", n, "get", "pods"]);
    let row = assert_header(&out, "p1", &["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(row[1..4], ["0/1", "Pending", "0"], "{out}");

    let out = k.ok(&["-n", n, "get", "services"]);
    let row = assert_header(
        &out,
        "svc1",
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
    );
    assert_eq!(row[1], "ClusterIP", "{out}");
    assert!(
        row[2].starts_with("10.0.0."),
        "cluster IP from the service CIDR: {out}"
    );
    assert_eq!(row[3..5], ["<none>", "80/TCP"], "{out}");

    let out = k.ok(&["get", "namespace", n]);
    let row = assert_header(&out, n, &["NAME", "STATUS", "AGE"]);
    assert_eq!(row[1], "Active");

    // Several kinds at once, and a label column.
    let out = k.ok(&["-n", n, "get", "configmaps", "--show-labels"]);
    assert_header(&out, "cm1", &["NAME", "DATA", "AGE", "LABELS"]);
}

/// kubectl apply creates, leaves unchanged, then three-way-merges a changed manifest.
#[test]
fn kubectl_apply_twice_with_change() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-apply");
    let n = ns.name.as_str();
    let v1 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  keep: \"1\"\n  drop: \"x\"\n";
    let v2 = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  labels:\n    tier: web\ndata:\n  keep: \"2\"\n  add: \"y\"\n";

    assert_eq!(
        k.ok_input(&["-n", n, "apply", "-f", "-"], v1).trim(),
        "configmap/applied created"
    );
    assert_eq!(
        k.ok_input(&["-n", n, "apply", "-f", "-"], v1).trim(),
        "configmap/applied unchanged"
    );

    // A change made outside the manifest survives the next apply.
    k.ok(&["-n", n, "label", "configmap", "applied", "manual=yes"]);
    assert_eq!(
        k.ok_input(&["-n", n, "apply", "-f", "-"], v2).trim(),
        "configmap/applied configured"
    );

    let cm = json(&k, &["-n", n, "get", "configmap", "applied"]);
    assert_eq!(
        cm["data"],
        serde_json::json!({"keep": "2", "add": "y"}),
        "{cm}"
    );
    assert_eq!(cm["metadata"]["labels"]["tier"], "web");
    assert_eq!(cm["metadata"]["labels"]["manual"], "yes");
    let last = cm["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("last-applied-configuration annotation");
    let last: Value = serde_json::from_str(last).expect("last-applied is JSON");
    assert_eq!(last["data"], serde_json::json!({"keep": "2", "add": "y"}));
}

/// kubectl explain reads the server's OpenAPI v3 documents.
#[test]
fn kubectl_explain() {
    let k = Kubectl::from_env();
    let out = k.ok(&["explain", "deployment.spec.replicas"]);
    for want in [
        "GROUP:",
        "apps",
        "KIND:",
        "Deployment",
        "VERSION:",
        "v1",
        "FIELD: replicas <integer>",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let out = k.ok(&["explain", "pods"]);
    for want in [
        "KIND:",
        "Pod",
        "DESCRIPTION:",
        "FIELDS:",
        "spec\t<PodSpec>",
        "status\t<PodStatus>",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let out = k.ok(&["explain", "configmaps", "--recursive"]);
    assert!(out.contains("binaryData\t<map[string]string>"), "{out}");
}

/// kubectl auth can-i (SelfSubjectAccessReview) for the admin user.
#[test]
fn kubectl_auth_can_i() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-auth");
    assert_eq!(
        k.ok(&["auth", "can-i", "create", "deployments", "-n", &ns.name])
            .trim(),
        "yes"
    );
    assert_eq!(k.ok(&["auth", "can-i", "*", "*"]).trim(), "yes");
    assert_eq!(k.ok(&["auth", "can-i", "get", "/healthz"]).trim(), "yes");
}

/// kubectl auth whoami (SelfSubjectReview) shows the client certificate's user and groups.
#[test]
fn kubectl_auth_whoami() {
    let k = Kubectl::from_env();
    let v = json(&k, &["auth", "whoami"]);
    assert_eq!(v["kind"], "SelfSubjectReview", "{v}");
    assert_eq!(
        v["status"]["userInfo"]["username"], "kubernetes-admin",
        "{v}"
    );
    let groups: Vec<&str> = v["status"]["userInfo"]["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        groups.contains(&"system:masters") && groups.contains(&"system:authenticated"),
        "{v}"
    );

    let out = k.ok(&["auth", "whoami"]);
    let row = out
        .lines()
        .find(|l| l.starts_with("Username"))
        .unwrap_or_else(|| panic!("no Username row:\n{out}"));
    assert_eq!(
        row.split_whitespace().nth(1),
        Some("kubernetes-admin"),
        "{out}"
    );
}

/// kubectl get -w prints the object, then prints it again after a change.
#[test]
fn kubectl_get_watch_sees_update() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-watch");
    let n = ns.name.as_str();
    k.ok(&["-n", n, "create", "configmap", "w", "--from-literal=v=1"]);

    let mut child = k.spawn(&[
        "-n",
        n,
        "get",
        "configmap",
        "w",
        "-w",
        "-o",
        "jsonpath={.data.v}{\"\\n\"}",
    ]);
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if tx.send(l).is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let wait_for = |want: &str| {
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.trim() == want => return,
                Ok(line) => seen.push(line),
                Err(e) => panic!("kubectl get -w: no line {want:?} ({e}); lines: {seen:?}"),
            }
        }
    };
    wait_for("1");
    let out = k.ok(&[
        "-n",
        n,
        "patch",
        "configmap",
        "w",
        "-p",
        r#"{"data":{"v":"2"}}"#,
    ]);
    assert_eq!(out.trim(), "configmap/w patched");
    wait_for("2");
    let _ = child.kill();
    let _ = child.wait();
}

/// kubectl delete by name, by label and by file; NotFound afterwards.
#[test]
fn kubectl_delete() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-delete");
    let n = ns.name.as_str();
    k.ok(&["-n", n, "create", "configmap", "gone", "--from-literal=a=b"]);
    k.ok(&["-n", n, "create", "deployment", "web", "--image=nginx:1.27"]);
    let pt = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: from-file\nstringData:\n  a: b\n";
    k.ok_input(&["-n", n, "create", "-f", "-"], pt);

    let out = k.ok(&["-n", n, "delete", "configmap", "gone"]);
    assert!(out.starts_with(r#"configmap "gone" deleted"#), "{out}");
    let get = k.run(&["-n", n, "get", "configmap", "gone"], None);
    assert_eq!(get.code, 1, "{}", get.describe());
    assert!(
        get.stderr
            .contains(r#"Error from server (NotFound): configmaps "gone" not found"#),
        "{}",
        get.describe()
    );

    let out = k.ok(&["-n", n, "delete", "deployments", "-l", "app=web"]);
    assert!(out.starts_with(r#"deployment.apps "web" deleted"#), "{out}");
    let out = k.ok_input(&["-n", n, "delete", "-f", "-"], pt);
    assert!(out.starts_with(r#"secret "from-file" deleted"#), "{out}");

    let left = k.ok(&["-n", n, "get", "deployments,secrets", "-o", "name"]);
    assert_eq!(left.trim(), "", "objects left: {left}");
}

/// kubectl label, annotate, patch and scale.
#[test]
fn kubectl_label_annotate_patch_scale() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-edit");
    let n = ns.name.as_str();
    k.ok(&["-n", n, "create", "deployment", "web", "--image=nginx:1.27"]);

    assert_eq!(
        k.ok(&["-n", n, "label", "deployment", "web", "tier=front"])
            .trim(),
        "deployment.apps/web labeled"
    );
    assert_eq!(
        k.ok(&["-n", n, "annotate", "deployment", "web", "note=hi"])
            .trim(),
        "deployment.apps/web annotated"
    );
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#;
    assert_eq!(
        k.ok(&["-n", n, "patch", "deployment", "web", "-p", patch])
            .trim(),
        "deployment.apps/web patched"
    );
    assert_eq!(
        k.ok(&["-n", n, "scale", "deployment", "web", "--replicas=3"])
            .trim(),
        "deployment.apps/web scaled"
    );

    let d = json(&k, &["-n", n, "get", "deployment", "web"]);
    assert_eq!(d["metadata"]["labels"]["tier"], "front");
    assert_eq!(d["metadata"]["annotations"]["note"], "hi");
    assert_eq!(d["spec"]["replicas"], 3);
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(
        containers.len(),
        1,
        "strategic merge keeps one container: {containers:?}"
    );
    assert_eq!(containers[0]["image"], "nginx:1.28");
}

/// kubectl api-resources (aggregated discovery) and get --raw.
#[test]
fn kubectl_api_resources_and_raw() {
    let k = Kubectl::from_env();
    let out = k.ok(&["api-resources"]);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        "{out}"
    );
    for want in [
        vec!["deployments", "deploy", "apps/v1", "true", "Deployment"],
        vec!["namespaces", "ns", "v1", "false", "Namespace"],
        vec!["configmaps", "cm", "v1", "true", "ConfigMap"],
    ] {
        assert!(rows.contains(&want), "no row {want:?} in:\n{out}");
    }
    let names = k.ok(&["api-resources", "--api-group=apps", "-o", "name"]);
    assert!(names.lines().any(|l| l == "deployments.apps"), "{names}");

    assert_eq!(k.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    let v: Value =
        serde_json::from_str(&k.ok(&["get", "--raw", "/api/v1/namespaces/default"])).expect("JSON");
    assert_eq!(v["kind"], "Namespace");
}

/// kubectl apply --server-side creates the object and records its field manager; a second
/// apply by another manager that conflicts is refused without --force-conflicts.
#[test]
fn kubectl_apply_server_side() {
    let k = Kubectl::from_env();
    let ns = k.create_namespace("kubectl-ssa");
    let n = ns.name.as_str();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n";
    let out = k.ok_input(&["-n", n, "apply", "--server-side", "-f", "-"], cm);
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
    let got = json(
        &k,
        &["-n", n, "get", "configmap", "ssa", "--show-managed-fields"],
    );
    assert_eq!(got["data"]["a"], "1");
    let managers: Vec<&str> = got["metadata"]["managedFields"]
        .as_array()
        .map(|m| m.iter().filter_map(|e| e["manager"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(managers, ["kubectl"], "{got}");

    let changed = cm.replace("\"1\"", "\"2\"");
    let out = k.run(
        &[
            "-n",
            n,
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            "-",
        ],
        Some(&changed),
    );
    assert_ne!(
        out.code,
        0,
        "a conflicting apply must fail: {}",
        out.describe()
    );
    assert!(out.stderr.contains("conflict"), "{}", out.describe());
    let out = k.ok_input(
        &[
            "-n",
            n,
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        &changed,
    );
    assert_eq!(out.trim(), "configmap/ssa serverside-applied");
}
