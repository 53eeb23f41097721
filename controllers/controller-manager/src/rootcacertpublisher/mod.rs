//! root-ca-certificate-publisher-controller (upstream
//! `pkg/controller/certificates/rootcacertpublisher/publisher.go`): publishes `--root-ca-file`
//! as ConfigMap `kube-root-ca.crt` (key `ca.crt`) in every namespace and restores it when it is
//! deleted or changed. Not started without a root CA file.

use crate::ControllerContext;
use crate::garbagecollector::operations::api_code;
use component_base::informer::Change;
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const CONFIG_MAP_NAME: &str = "kube-root-ca.crt";
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver \
when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other \
usage is guaranteed across distributions of Kubernetes clusters.";

/// Whether `cm` already carries exactly the published data and description.
fn up_to_date(cm: &ConfigMap, data: &BTreeMap<String, String>) -> bool {
    cm.data.as_ref() == Some(data)
        && cm
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(DESCRIPTION_ANNOTATION))
            .map(String::as_str)
            == Some(DESCRIPTION)
}

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let Some(path) = ctx.config.root_ca_file.clone() else {
        tracing::info!("no --root-ca-file: root-ca-certificate-publisher-controller not started");
        return Box::pin(async { Ok(()) });
    };
    let namespaces = ctx.informers.informer::<Namespace>();
    let configmaps = ctx.informers.informer::<ConfigMap>();
    let client = ctx.client.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        let ca = tokio::fs::read_to_string(&path).await.map_err(|e| {
            anyhow::anyhow!("error reading root-ca-file at {}: {e}", path.display())
        })?;
        let data = Arc::new(BTreeMap::from([("ca.crt".to_string(), ca)]));
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = async { namespaces.wait_synced().await; configmaps.wait_synced().await } => {}
        }
        let queue: Arc<WorkQueue<String>> = WorkQueue::new("root_ca_cert_publisher");
        let (q, mut rx) = (queue.clone(), namespaces.subscribe());
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                if let Change::Added(ns) | Change::Updated(_, ns) = &c {
                    q.add(ns.metadata.name.clone().unwrap_or_default());
                }
            }
        });
        let (q, mut rx) = (queue.clone(), configmaps.subscribe());
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                if matches!(c, Change::Added(_)) {
                    continue;
                }
                let cm = c.object();
                if cm.metadata.name.as_deref() == Some(CONFIG_MAP_NAME) {
                    q.add(cm.metadata.namespace.clone().unwrap_or_default());
                }
            }
        });
        let sync = move |ns_name: String| {
            let (namespaces, configmaps, client, data) = (
                namespaces.clone(),
                configmaps.clone(),
                client.clone(),
                data.clone(),
            );
            async move {
                let Some(ns) = namespaces.get(None, &ns_name) else {
                    return Ok(());
                };
                if ns.metadata.deletion_timestamp.is_some() {
                    return Ok(());
                }
                let api: Api<ConfigMap> = Api::namespaced(client, &ns_name);
                match configmaps.get(Some(&ns_name), CONFIG_MAP_NAME) {
                    None => {
                        let cm = ConfigMap {
                            metadata: ObjectMeta {
                                name: Some(CONFIG_MAP_NAME.into()),
                                annotations: Some(BTreeMap::from([(
                                    DESCRIPTION_ANNOTATION.to_string(),
                                    DESCRIPTION.to_string(),
                                )])),
                                ..Default::default()
                            },
                            data: Some((*data).clone()),
                            ..Default::default()
                        };
                        match api.create(&PostParams::default(), &cm).await {
                            Ok(_) => Ok(()),
                            Err(e) if matches!(api_code(&e), Some(409 | 403)) => Ok(()),
                            Err(e) => Err(e.into()),
                        }
                    }
                    Some(cm) if up_to_date(&cm, &data) => Ok(()),
                    Some(cm) => {
                        let mut cm = (*cm).clone();
                        cm.data = Some((*data).clone());
                        cm.metadata
                            .annotations
                            .get_or_insert_with(Default::default)
                            .insert(DESCRIPTION_ANNOTATION.into(), DESCRIPTION.into());
                        match api
                            .replace(CONFIG_MAP_NAME, &PostParams::default(), &cm)
                            .await
                        {
                            Ok(_) => Ok(()),
                            Err(e) if matches!(api_code(&e), Some(404)) => Ok(()),
                            Err(e) => Err(e.into()),
                        }
                    }
                }
            }
        };
        let runner = tokio::spawn(run_workers(queue.clone(), 1, sync));
        shutdown.cancelled().await;
        queue.shut_down();
        let _ = runner.await;
        Ok(())
    })
}
