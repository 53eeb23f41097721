//! namespace-controller (upstream `pkg/controller/namespace/namespace_controller.go`): queues
//! namespaces with a deletionTimestamp and runs the content deleter on them, requeueing while
//! content (e.g. gracefully terminating pods) remains.

pub mod conditions;
pub mod deleter;

use crate::ControllerContext;
use component_base::informer::Change;
use component_base::workqueue::WorkQueue;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Namespace;
use std::sync::Arc;
use std::time::Duration;

pub fn start(ctx: &ControllerContext) -> BoxFuture<'static, anyhow::Result<()>> {
    let namespaces = ctx.informers.informer::<Namespace>();
    let deleter = Arc::new(deleter::Deleter::new(ctx.client.clone()));
    let workers = ctx.config.concurrent_namespace_syncs;
    let shutdown = ctx.shutdown.clone();
    Box::pin(async move {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = namespaces.wait_synced() => {}
        }
        let queue: Arc<WorkQueue<String>> = WorkQueue::new("namespace");
        let mut rx = namespaces.subscribe();
        let q = queue.clone();
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                if let Change::Added(ns) | Change::Updated(_, ns) = &change
                    && ns.metadata.deletion_timestamp.is_some()
                {
                    q.add(ns.metadata.name.clone().unwrap_or_default());
                }
            }
        });
        let mut handles = Vec::new();
        for _ in 0..workers.max(1) {
            let q = queue.clone();
            let deleter = deleter.clone();
            handles.push(tokio::spawn(async move {
                while let Some(name) = q.get().await {
                    match deleter.delete(&name).await {
                        Ok(()) => q.forget(&name),
                        Err(e) => match e.downcast_ref::<deleter::ResourcesRemaining>() {
                            Some(r) => {
                                // Content is going away on its own (graceful deletion).
                                q.forget(&name);
                                q.add_after(
                                    name.clone(),
                                    Duration::from_secs((r.estimate / 2 + 1).max(1) as u64),
                                );
                            }
                            None => {
                                tracing::info!(namespace = %name, error = %format!("{e:#}"), "namespace deletion failed; retrying");
                                q.add_rate_limited(name.clone());
                            }
                        },
                    }
                    q.done(&name);
                }
            }));
        }
        shutdown.cancelled().await;
        queue.shut_down();
        for h in handles {
            let _ = h.await;
        }
        Ok(())
    })
}
