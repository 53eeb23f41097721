//! Volumes: configMap, projected downward API, emptyDir (upstream `test/e2e/common/storage`).

use super::*;

/// [sig-storage] ConfigMap should be consumable from pods in volume with mappings [NodeConformance] [Conformance]
/// and [sig-storage] Projected downwardAPI should provide podname only [NodeConformance] [Conformance]
#[tokio::test]
async fn configmap_and_downward_api_volumes_are_consumable() {
    let (c, ns, pods) = setup("volumes").await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = c.ns_api(&ns.name);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "cm"},
        "data": {"data-1": "value-1", "data-2": "value-2"}}))
        .unwrap(),
    )
    .await
    .unwrap();
    pods.create(&PostParams::default(), &pod("volumes", json!({
        "restartPolicy": "Never",
        "volumes": [
            {"name": "cm", "configMap": {"name": "cm", "items": [{"key": "data-2", "path": "path/to/data-2", "mode": 256}]}},
            {"name": "podinfo", "projected": {"sources": [{"downwardAPI": {"items": [
                {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            {"name": "scratch", "emptyDir": {}}],
        "containers": [{"name": "c", "image": BUSYBOX, "command": ["sh", "-c",
            "echo scratch > /scratch/f && { cat /etc/cm/path/to/data-2; echo; cat /etc/podinfo/podname; echo; stat -c %a /etc/cm/path/to/data-2; cat /scratch/f; ls /etc/cm; } > /dev/termination-log"],
            "volumeMounts": [{"name": "cm", "mountPath": "/etc/cm"}, {"name": "podinfo", "mountPath": "/etc/podinfo"},
                {"name": "scratch", "mountPath": "/scratch"}]}]})))
        .await
        .unwrap();
    let p = wait_phase(&pods, "volumes", &["Succeeded", "Failed"]).await;
    let st = p.status.unwrap();
    let t = st.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(st.phase.as_deref(), Some("Succeeded"), "{t:?}");
    assert_eq!(
        t.message.as_deref(),
        Some("value-2\nvolumes\n400\nscratch\npath\n")
    );
}
