//! kube-scheduler against an in-process kube-apiserver (memory storage).
fn main() {}
