//! Builders for plugin unit tests.

use crate::framework::{NodeInfo, SharedLister};
use k8s_openapi::api::core::v1::{
    Container, ContainerImage, Node, NodeSpec, NodeStatus, Pod, PodSpec, ResourceRequirements,
    Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub fn q(s: &str) -> Quantity {
    Quantity(s.to_string())
}

pub fn requests(cpu: &str, mem: &str) -> ResourceRequirements {
    ResourceRequirements {
        requests: Some([("cpu".to_string(), q(cpu)), ("memory".to_string(), q(mem))].into()),
        ..Default::default()
    }
}

pub fn pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("pause".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

pub fn labeled_pod(name: &str, labels: &[(&str, &str)]) -> Pod {
    let mut p = pod(name);
    p.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    p
}

pub fn pod_req(name: &str, cpu: &str, mem: &str) -> Pod {
    let mut p = pod(name);
    p.spec.as_mut().unwrap().containers[0].resources = Some(requests(cpu, mem));
    p
}

pub fn node_with(name: &str, cpu: &str, mem: &str, pods: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
            ..Default::default()
        },
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            allocatable: Some(
                [
                    ("cpu".to_string(), q(cpu)),
                    ("memory".to_string(), q(mem)),
                    ("pods".to_string(), q(pods)),
                ]
                .into(),
            ),
            ..Default::default()
        }),
    }
}

pub fn node(name: &str) -> Node {
    node_with(name, "4", "8Gi", "110")
}

pub fn labeled_node(name: &str, labels: &[(&str, &str)]) -> Node {
    let mut n = node(name);
    let l = n.metadata.labels.get_or_insert_default();
    for (k, v) in labels {
        l.insert(k.to_string(), v.to_string());
    }
    n
}

pub fn tainted_node(name: &str, key: &str, value: &str, effect: &str) -> Node {
    let mut n = node(name);
    n.spec.get_or_insert_default().taints = Some(vec![Taint {
        key: key.into(),
        value: Some(value.into()).filter(|v: &String| !v.is_empty()),
        effect: effect.into(),
        time_added: None,
    }]);
    n
}

pub fn node_with_image(name: &str, image: &str, size: i64) -> Node {
    let mut n = node(name);
    n.status.get_or_insert_default().images = Some(vec![ContainerImage {
        names: Some(vec![image.into()]),
        size_bytes: Some(size),
    }]);
    n
}

/// A lister over fixed node infos.
pub struct TestLister {
    pub nodes: Vec<Arc<NodeInfo>>,
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
}

impl TestLister {
    pub fn new(nodes: Vec<NodeInfo>) -> TestLister {
        TestLister {
            nodes: nodes.into_iter().map(Arc::new).collect(),
            namespaces: HashMap::new(),
        }
    }
}

impl SharedLister for TestLister {
    fn node_infos(&self) -> &[Arc<NodeInfo>] {
        &self.nodes
    }
    fn get(&self, node: &str) -> Option<&Arc<NodeInfo>> {
        self.nodes.iter().find(|n| n.name == node)
    }
    fn namespace_labels(&self, ns: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces.get(ns).cloned()
    }
    fn image_num_nodes(&self, image: &str) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.images.contains_key(image))
            .count()
    }
}

pub struct EmptyLister;

impl SharedLister for EmptyLister {
    fn node_infos(&self) -> &[Arc<NodeInfo>] {
        &[]
    }
    fn get(&self, _: &str) -> Option<&Arc<NodeInfo>> {
        None
    }
    fn namespace_labels(&self, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }
    fn image_num_nodes(&self, _: &str) -> usize {
        0
    }
}
