//! kube-apiserver.
