//! kubelet: the node agent (upstream `cmd/kubelet`, `pkg/kubelet`). It registers its Node and
//! renews its Lease, runs the pods bound to it through the CRI, reports their status, and
//! serves logs, exec, attach and port-forward on its HTTPS port.

pub mod config;
pub mod cri;
pub mod logs;
pub mod server;

pub use config::Config;
