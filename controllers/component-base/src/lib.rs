//! What every component other than the apiserver shares (mirrors upstream
//! `staging/src/k8s.io/component-base` and the bits of client-go the control plane uses):
//! API client setup from `--kubeconfig`, tracing, shared informers, rate-limited work queues,
//! leader election on a coordination/v1 Lease, event recording, and the health and metrics server.

pub mod client;
pub mod events;
pub mod informer;
pub mod leader;
pub mod logging;
pub mod serve;
pub mod workqueue;

pub use informer::{Change, Informer, InformerFactory};
pub use workqueue::WorkQueue;
