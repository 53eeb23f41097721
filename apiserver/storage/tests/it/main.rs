//! Storage integration tests: the shared suite on every backend, and the watch cache.

mod cacher;

use apiserver_storage::{Storage, memory::MemoryStorage, suite};
use std::sync::Arc;

#[tokio::test]
async fn memory_backend_passes_suite() {
    let store: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
    suite::run(store, "/registry/test/").await;
}

/// A private etcd (kept alive by the returned handle) and a storage connected to it.
pub(crate) async fn private_etcd() -> (apiserver_storage::testing::EtcdServer, Arc<dyn Storage>) {
    let etcd = apiserver_storage::testing::EtcdServer::start()
        .await
        .expect("etcd must be installed (hack/install-deps.sh installs etcd-server)");
    let store: Arc<dyn Storage> = Arc::new(
        apiserver_storage::etcd::EtcdStorage::connect(&[etcd.endpoint()])
            .await
            .expect("connect"),
    );
    (etcd, store)
}

#[tokio::test]
async fn etcd_backend_passes_suite() {
    let (_etcd, store) = private_etcd().await;
    suite::run(store, "/registry/test/").await;
}
