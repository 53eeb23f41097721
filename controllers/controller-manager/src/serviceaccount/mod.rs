//! serviceaccount-controller (upstream `pkg/controller/serviceaccount/serviceaccounts_controller.go`):
//! ensures a `default` ServiceAccount in every active namespace, re-creating it when deleted.

use crate::ControllerContext;
use crate::garbagecollector::operations::api_code;
use component_base::informer::Change;
use component_base::workqueue::{WorkQueue, run_workers};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::Arc;

/// The service accounts ensured in every namespace.
pub const SERVICE_ACCOUNTS: [&str; 1] = ["default"];

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let namespaces = ctx.informers.informer::<Namespace>();
    let accounts = ctx.informers.informer::<ServiceAccount>();
    let client = ctx.client.clone();
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = async { namespaces.wait_synced().await; accounts.wait_synced().await } => {}
        }
        let queue: Arc<WorkQueue<String>> = WorkQueue::new("serviceaccount");
        let (q, mut rx) = (queue.clone(), namespaces.subscribe());
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                if let Change::Added(ns) | Change::Updated(_, ns) = &c {
                    q.add(ns.metadata.name.clone().unwrap_or_default());
                }
            }
        });
        let (q, mut rx) = (queue.clone(), accounts.subscribe());
        tokio::spawn(async move {
            while let Some(c) = rx.recv().await {
                if let Change::Deleted(sa) = &c
                    && SERVICE_ACCOUNTS.contains(&sa.metadata.name.as_deref().unwrap_or_default())
                {
                    q.add(sa.metadata.namespace.clone().unwrap_or_default());
                }
            }
        });
        let sync = move |ns_name: String| {
            let (namespaces, accounts, client) =
                (namespaces.clone(), accounts.clone(), client.clone());
            async move {
                let Some(ns) = namespaces.get(None, &ns_name) else {
                    return Ok(());
                };
                if ns.metadata.deletion_timestamp.is_some()
                    || ns
                        .status
                        .as_ref()
                        .and_then(|s| s.phase.as_deref())
                        .is_some_and(|p| p != "Active")
                {
                    return Ok(());
                }
                for name in SERVICE_ACCOUNTS {
                    if accounts.get(Some(&ns_name), name).is_some() {
                        continue;
                    }
                    let sa = ServiceAccount {
                        metadata: ObjectMeta {
                            name: Some(name.into()),
                            ..Default::default()
                        },
                        ..Default::default()
                    };
                    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns_name);
                    match api.create(&PostParams::default(), &sa).await {
                        Ok(_) => {}
                        // Already there (our cache is behind), or the namespace is terminating.
                        Err(e) if matches!(api_code(&e), Some(409 | 403)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
        };
        let runner = tokio::spawn(run_workers(queue.clone(), 1, sync));
        shutdown.cancelled().await;
        queue.shut_down();
        let _ = runner.await;
        Ok(())
    })
}
