//! Storage integration tests: the shared suite on every backend, and the watch cache.

mod cacher;
mod etcd_server;

use apiserver_storage::{Storage, memory::MemoryStorage, suite};
use std::sync::Arc;

#[tokio::test]
async fn memory_backend_passes_suite() {
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    suite::run(store, "/registry/test/").await;
}

#[tokio::test]
async fn etcd_backend_passes_suite() {
    let etcd = etcd_server::EtcdServer::start().await;
    let store: Arc<dyn Storage> = Arc::new(
        apiserver_storage::etcd::EtcdStorage::connect(&[etcd.endpoint()])
            .await
            .expect("connect"),
    );
    suite::run(store, "/registry/test/").await;
}
