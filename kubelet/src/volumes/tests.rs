//! VolumeManager tests against the in-memory source.

use super::test_support::{FakeSource, TempDir, pod_from_json};
use super::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

fn manager(tmp: &TempDir, src: &Arc<FakeSource>) -> VolumeManager {
    VolumeManager::with_source(src.clone(), tmp.path().to_path_buf()).without_tmpfs()
}

fn pod(volumes: serde_json::Value) -> Pod {
    pod_from_json(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "uid-1",
                     "labels": {"app": "web"}},
        "spec": {"serviceAccountName": "runner",
                 "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": volumes}
    }))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn config_map_volume_follows_its_source() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    src.put_config_map("ns", "cfg", &[("a", "1"), ("b", "2")]);
    let p = pod(json!([{"name": "config", "configMap": {"name": "cfg"}}]));

    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    let mv = &vols.volumes["config"];
    assert_eq!(mv.host_path, vm.volume_dir("uid-1", "configmap", "config"));
    assert!(
        mv.host_path
            .ends_with("pods/uid-1/volumes/kubernetes.io~configmap/config")
    );
    assert!(mv.read_only);
    assert_eq!(read(&mv.host_path.join("a")), "1");
    assert_eq!(mode(&mv.host_path.join("b")), 0o644);
    assert_eq!(mode(&mv.host_path), 0o777);

    // Unchanged source: the data directory stays.
    let data = fs::read_link(mv.host_path.join("..data")).unwrap();
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(fs::read_link(mv.host_path.join("..data")).unwrap(), data);

    // Changed and removed keys follow.
    src.put_config_map("ns", "cfg", &[("a", "one")]);
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(read(&mv.host_path.join("a")), "one");
    assert!(fs::symlink_metadata(mv.host_path.join("b")).is_err());
}

#[tokio::test]
async fn config_map_items_modes_binary_data_and_errors() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    src.put_config_map_obj(
        serde_json::from_value(json!({
            "metadata": {"name": "cfg", "namespace": "ns"},
            "data": {"text": "hello"},
            "binaryData": {"bin": "AAEC"}
        }))
        .unwrap(),
    );
    let p = pod(
        json!([{"name": "config", "configMap": {"name": "cfg", "defaultMode": 0o600,
        "items": [{"key": "text", "path": "dir/t.txt", "mode": 0o400},
                  {"key": "bin", "path": "b"}]}}]),
    );
    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    let dir = &vols.volumes["config"].host_path;
    assert_eq!(read(&dir.join("dir/t.txt")), "hello");
    assert_eq!(mode(&dir.join("dir/t.txt")), 0o400);
    assert_eq!(fs::read(dir.join("b")).unwrap(), vec![0, 1, 2]);
    assert_eq!(mode(&dir.join("b")), 0o600);
    assert!(!dir.join("text").exists());

    let missing_key = pod(json!([{"name": "config", "configMap": {"name": "cfg",
        "items": [{"key": "nope", "path": "x"}]}}]));
    let err = vm.mount_pod_volumes(&missing_key).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"config\" : configmap references non-existent config key: nope"
    );
    let optional_key = pod(
        json!([{"name": "config", "configMap": {"name": "cfg", "optional": true,
        "items": [{"key": "nope", "path": "x"}, {"key": "text", "path": "t"}]}}]),
    );
    let vols = vm.mount_pod_volumes(&optional_key).await.unwrap();
    assert_eq!(read(&vols.volumes["config"].host_path.join("t")), "hello");
}

#[tokio::test]
async fn missing_sources_fail_unless_optional() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    let p = pod(json!([
        {"name": "cfg", "configMap": {"name": "absent"}},
        {"name": "sec", "secret": {"secretName": "hidden"}},
        {"name": "scratch", "emptyDir": {}}
    ]));
    let err = vm.mount_pod_volumes(&p).await.unwrap_err();
    let VolumeError::SetUp(failures) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec![
            "MountVolume.SetUp failed for volume \"cfg\" : configmap \"absent\" not found",
            "MountVolume.SetUp failed for volume \"sec\" : secret \"hidden\" not found",
        ]
    );
    assert_eq!(err.unmounted_volumes(), vec!["cfg", "sec"]);
    // The healthy volume was still set up; nothing was written for the failing ones.
    assert!(vm.volume_dir("uid-1", "empty-dir", "scratch").is_dir());
    assert!(!vm.volume_dir("uid-1", "configmap", "cfg").exists());

    let p = pod(json!([
        {"name": "cfg", "configMap": {"name": "absent", "optional": true}},
        {"name": "sec", "secret": {"secretName": "hidden", "optional": true}}
    ]));
    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    for v in ["cfg", "sec"] {
        let dir = &vols.volumes[v].host_path;
        let visible: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| !n.to_string_lossy().starts_with(".."))
            .collect();
        assert!(visible.is_empty(), "{v}: {visible:?}");
    }
}

#[tokio::test]
async fn secret_volume_items_and_missing_key() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    src.put_secret(
        "ns",
        "creds",
        &[("user", b"admin"), ("pass", b"\x00s3cret")],
    );
    let p = pod(json!([{"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o440}}]));
    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    let dir = &vols.volumes["s"].host_path;
    assert!(dir.ends_with("volumes/kubernetes.io~secret/s"));
    assert!(vols.volumes["s"].read_only);
    assert_eq!(fs::read(dir.join("pass")).unwrap(), b"\x00s3cret");
    assert_eq!(mode(&dir.join("user")), 0o440);

    let p = pod(json!([{"name": "s", "secret": {"secretName": "creds",
        "items": [{"key": "token", "path": "t"}]}}]));
    assert_eq!(
        vm.mount_pod_volumes(&p).await.unwrap_err().to_string(),
        "MountVolume.SetUp failed for volume \"s\" : references non-existent secret key: token"
    );
}

/// The volume our ServiceAccount admission adds to every pod.
fn kube_api_access() -> serde_json::Value {
    json!({"name": "kube-api-access-abcde", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}})
}

#[tokio::test]
async fn default_service_account_volume() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    let p = pod(json!([kube_api_access()]));

    // Before the root CA is published the volume fails, with the configMap named.
    let err = vm.mount_pod_volumes(&p).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"kube-api-access-abcde\" : configmap \"kube-root-ca.crt\" not found"
    );

    src.put_config_map("ns", "kube-root-ca.crt", &[("ca.crt", "PEM")]);
    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    let mv = &vols.volumes["kube-api-access-abcde"];
    assert!(
        mv.host_path
            .ends_with("volumes/kubernetes.io~projected/kube-api-access-abcde")
    );
    assert!(mv.read_only);
    let dir = &mv.host_path;
    let token = read(&dir.join("token"));
    assert!(token.starts_with("token-"), "{token}");
    assert_eq!(read(&dir.join("ca.crt")), "PEM");
    assert_eq!(read(&dir.join("namespace")), "ns");
    assert_eq!(mode(&dir.join("..data/token")), 0o644);

    let reqs = src.token_requests();
    let (ns, sa, req) = reqs.last().unwrap();
    let spec = req.spec.as_ref().unwrap();
    assert_eq!((ns.as_str(), sa.as_str()), ("ns", "runner"));
    assert_eq!(spec.expiration_seconds, Some(3607));
    assert_eq!(spec.audiences, Some(vec![]));
    let bound = spec.bound_object_ref.as_ref().unwrap();
    assert_eq!(
        (bound.api_version.as_deref(), bound.kind.as_deref()),
        (Some("v1"), Some("Pod"))
    );
    assert_eq!(
        (bound.name.as_deref(), bound.uid.as_deref()),
        (Some("web"), Some("uid-1"))
    );

    // A fresh token is reused on the next sync.
    let n = src.token_requests().len();
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(src.token_requests().len(), n);
    assert_eq!(read(&dir.join("token")), token);
}

#[tokio::test]
async fn projected_errors_are_aggregated() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    src.fail_tokens("serviceaccounts \"runner\" not found");
    let p = pod(json!([{"name": "proj", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "audience": "vault"}},
        {"secret": {"name": "gone"}},
        {"clusterTrustBundle": {"signerName": "x/y", "path": "b"}}
    ]}}]));
    assert_eq!(
        vm.mount_pod_volumes(&p).await.unwrap_err().to_string(),
        "MountVolume.SetUp failed for volume \"proj\" : [failed to fetch token: serviceaccounts \
         \"runner\" not found, secret \"gone\" not found, clusterTrustBundle projections are not \
         supported by this kubelet]"
    );
}

#[tokio::test]
async fn downward_api_volume_tracks_labels_and_resources() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    src.set_allocatable(&[("cpu", "2"), ("memory", "4Gi")]);
    let vm = manager(&tmp, &src);
    let vols = json!([{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "cpu_limit", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu",
                                                  "divisor": "1m"}}
    ]}}]);
    let mut p = pod(vols);
    let out = vm.mount_pod_volumes(&p).await.unwrap();
    let dir = &out.volumes["info"].host_path;
    assert!(dir.ends_with("volumes/kubernetes.io~downward-api/info"));
    assert_eq!(read(&dir.join("labels")), "app=\"web\"");
    // No limit on the container: node allocatable, fetched once.
    assert_eq!(read(&dir.join("cpu_limit")), "2000");
    assert_eq!(src.allocatable_calls(), 1);

    p.metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("tier".into(), "front".into());
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(read(&dir.join("labels")), "app=\"web\"\ntier=\"front\"");
}

#[tokio::test]
async fn empty_dir_host_path_and_unsupported() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    let host = tmp.path().join("host/data");
    let p = pod(json!([
        {"name": "scratch", "emptyDir": {}},
        {"name": "h", "hostPath": {"path": host, "type": "DirectoryOrCreate"}}
    ]));
    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    let scratch = &vols.volumes["scratch"];
    assert!(
        scratch
            .host_path
            .ends_with("volumes/kubernetes.io~empty-dir/scratch")
    );
    assert!(!scratch.read_only);
    assert_eq!(mode(&scratch.host_path), 0o777);
    assert_eq!(vols.volumes["h"].host_path, host);
    assert!(host.is_dir());

    let bad = pod(json!([
        {"name": "claim", "persistentVolumeClaim": {"claimName": "c"}},
        {"name": "f", "hostPath": {"path": tmp.path().join("host/nofile"), "type": "File"}},
        {"name": "huge", "emptyDir": {"medium": "Disk"}}
    ]));
    let msgs: Vec<String> = match vm.mount_pod_volumes(&bad).await.unwrap_err() {
        VolumeError::SetUp(f) => f.into_iter().map(|f| f.message).collect(),
        e => panic!("{e:?}"),
    };
    assert_eq!(msgs[0], "no volume plugin matched");
    assert!(
        msgs[1].ends_with("host/nofile is not a file"),
        "{}",
        msgs[1]
    );
    assert_eq!(msgs[2], "unknown storage medium \"Disk\"");
}

#[tokio::test]
async fn cleanup_and_pod_dirs() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    let vm = manager(&tmp, &src);
    assert!(vm.pod_dirs().is_empty());
    src.put_config_map("ns", "kube-root-ca.crt", &[("ca.crt", "PEM")]);
    let p = pod(json!([{"name": "scratch", "emptyDir": {}}, kube_api_access()]));
    vm.mount_pod_volumes(&p).await.unwrap();
    fs::write(
        vm.volume_dir("uid-1", "empty-dir", "scratch").join("f"),
        "x",
    )
    .unwrap();
    assert_eq!(vm.pod_dirs(), vec!["uid-1"]);

    vm.cleanup_pod("uid-1").await.unwrap();
    assert!(!vm.pod_dir("uid-1").exists());
    assert!(vm.pod_dirs().is_empty());
    vm.cleanup_pod("uid-1").await.unwrap();
    assert!(vm.cleanup_pod("../x").await.is_err());

    // Tokens were forgotten with the pod: the next mount requests a new one.
    let n = src.token_requests().len();
    vm.mount_pod_volumes(&p).await.unwrap();
    assert_eq!(src.token_requests().len(), n + 1);
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

fn tmpfs_options(dir: &Path) -> Option<String> {
    let canon = fs::canonicalize(dir).ok()?;
    let text = fs::read_to_string("/proc/self/mountinfo").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let sep = f.iter().position(|x| *x == "-")?;
        (Path::new(f[4]) == canon && f.get(sep + 1) == Some(&"tmpfs"))
            .then(|| f.get(sep + 3).unwrap_or(&"").to_string())
    })
}

/// Needs root (mount/umount); an unprivileged run checks that the failure is reported.
#[tokio::test]
async fn memory_volumes_are_tmpfs_and_unmounted_on_cleanup() {
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    src.set_allocatable(&[("memory", "8Gi")]);
    src.put_secret("ns", "creds", &[("k", b"v")]);
    let vm = VolumeManager::with_source(src.clone(), tmp.path().to_path_buf());
    let p = pod(json!([
        {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "s", "secret": {"secretName": "creds"}}
    ]));
    let result = vm.mount_pod_volumes(&p).await;
    if !is_root() {
        assert!(result.unwrap_err().to_string().contains("mount"));
        return;
    }
    let vols = result.unwrap();
    let mem = &vols.volumes["mem"].host_path;
    let opts = tmpfs_options(mem).expect("emptyDir medium Memory is a tmpfs");
    assert!(opts.contains("size=16384k"), "{opts}");
    let sec = &vols.volumes["s"].host_path;
    let opts = tmpfs_options(sec).expect("secret volumes are tmpfs");
    // Sized by node allocatable (no pod memory limit).
    assert!(opts.contains("size=8388608k"), "{opts}");
    assert_eq!(read(&sec.join("k")), "v");
    // Idempotent: no second mount on the next sync.
    vm.mount_pod_volumes(&p).await.unwrap();
    let count = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&*sec.to_string_lossy()))
        .count();
    assert_eq!(count, 1);
    assert_eq!(src.allocatable_calls(), 1);

    vm.cleanup_pod("uid-1").await.unwrap();
    assert!(tmpfs_options(mem).is_none());
    assert!(!vm.pod_dir("uid-1").exists());
}

/// Manual end-to-end check against a real (private) containerd: volumes set up by the manager
/// and mounted into a busybox container through the CRI. Run with
/// `VOLUMES_CRI_ENDPOINT=/path/containerd.sock cargo test -p kubelet --lib real_runtime -- --ignored`
/// (where lowering oom_score_adj is not allowed, containerd needs `restrict_oom_score_adj = true`).
#[tokio::test]
#[ignore]
async fn real_runtime_sees_the_volumes() {
    use crate::cri::{Runtime, v1 as cri};
    let endpoint = std::env::var("VOLUMES_CRI_ENDPOINT").expect("set VOLUMES_CRI_ENDPOINT");
    let tmp = TempDir::new();
    let src = Arc::new(FakeSource::default());
    src.put_config_map("ns", "cfg", &[("a", "from-configmap")]);
    src.put_config_map("ns", "kube-root-ca.crt", &[("ca.crt", "PEM")]);
    src.put_secret("ns", "creds", &[("k", b"from-secret")]);
    let vm = VolumeManager::with_source(src.clone(), tmp.path().join("kubelet"));
    let p = pod(json!([
        {"name": "config", "configMap": {"name": "cfg"}},
        {"name": "s", "secret": {"secretName": "creds"}},
        {"name": "scratch", "emptyDir": {}},
        kube_api_access()
    ]));
    let container: k8s_openapi::api::core::v1::Container = serde_json::from_value(json!({
    "name": "c", "volumeMounts": [
        {"name": "config", "mountPath": "/etc/cfg"},
        {"name": "config", "mountPath": "/etc/cfg-a", "subPath": "a"},
        {"name": "s", "mountPath": "/secrets"},
        {"name": "kube-api-access-abcde", "readOnly": true,
         "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"},
        {"name": "scratch", "mountPath": "/scratch"},
        {"name": "scratch", "mountPath": "/scratch-sub", "subPathExpr": "$(POD)"}
    ]}))
    .unwrap();
    let vols = vm.mount_pod_volumes(&p).await.unwrap();
    let env = HashMap::from([("POD".to_string(), "web".to_string())]);
    let mounts = container_mounts(&p, &container, &vols, &env).unwrap();

    let rt = Runtime::connect(&endpoint, std::time::Duration::from_secs(60)).unwrap();
    let logs = tmp.path().join("logs");
    fs::create_dir_all(&logs).unwrap();
    let sandbox = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web".into(),
            uid: format!("vol-{}", uuid::Uuid::new_v4()),
            namespace: "ns".into(),
            attempt: 0,
        }),
        log_directory: logs.to_string_lossy().into_owned(),
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Node as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sid = rt.run_pod_sandbox(sandbox.clone()).await.unwrap();
    let script = "cat /etc/cfg/a; echo; cat /etc/cfg-a; echo; cat /secrets/k; echo; \
        cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; \
        cat /var/run/secrets/kubernetes.io/serviceaccount/token; echo; \
        ls -ld /var/run/secrets/kubernetes.io/serviceaccount | cut -c1-10; \
        (touch /etc/cfg/x 2>/dev/null && echo cfg-writable) || echo cfg-readonly; \
        echo data > /scratch/f && echo scratch-ok; echo sub > /scratch-sub/g";
    let config = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: "docker.io/library/busybox:latest".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        mounts,
        log_path: "c.log".into(),
        ..Default::default()
    };
    let cid = Box::pin(rt.create_container(&sid, config, sandbox))
        .await
        .unwrap();
    rt.start_container(&cid).await.unwrap();
    for _ in 0..100 {
        let st = rt.container_status(&cid).await.unwrap();
        if st.state == cri::ContainerState::ContainerExited as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let out: Vec<String> = read(&logs.join("c.log"))
        .lines()
        .map(|l| l.splitn(4, ' ').nth(3).unwrap_or("").to_string())
        .collect();
    rt.remove_container(&cid).await.unwrap();
    rt.stop_pod_sandbox(&sid).await.unwrap();
    rt.remove_pod_sandbox(&sid).await.unwrap();
    let scratch = vols.volumes["scratch"].host_path.clone();
    let host_f = read(&scratch.join("f"));
    let host_g = read(&scratch.join("web/g"));
    vm.cleanup_pod("uid-1").await.unwrap();
    assert!(!vm.pod_dir("uid-1").exists());

    assert_eq!(
        out,
        vec![
            "from-configmap",
            "from-configmap",
            "from-secret",
            "ns",
            "token-1",
            "drwxrwxrwt",
            "cfg-readonly",
            "scratch-ok"
        ]
    );
    assert_eq!(host_f, "data\n");
    assert_eq!(host_g, "sub\n");
}

/// Pod workers run on tokio tasks: the manager is shared and its futures are Send.
#[test]
fn manager_and_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn sync<T: Send + Sync>() {}
    sync::<VolumeManager>();
    let tmp = TempDir::new();
    let vm = manager(&tmp, &Arc::new(FakeSource::default()));
    let p = pod(json!([]));
    send(&vm.mount_pod_volumes(&p));
    send(&vm.cleanup_pod("uid-1"));
}
