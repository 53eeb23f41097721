//! Networking rows (printers.go printService, printEndpoints, printEndpointSlice,
//! printIngress, printIngressClass, printNetworkPolicy, printServiceCIDR, printIPAddress).

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Endpoints, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{
    IPAddress, Ingress, IngressClass, IngressRule, NetworkPolicy, ServiceCIDR,
};
use serde_json::{Value, json};

use crate::format::{
    age, first_three, format_label_selector, format_labels, join_host_port, lb_ingress, name, s,
};
use crate::{AGE, ColumnDef, NAME, TablePrinter, col, wide};

impl TablePrinter for Service {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Type",
                "string",
                "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer.",
            ),
            col(
                "Cluster-IP",
                "string",
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            col(
                "External-IP",
                "string",
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            col(
                "Port(s)",
                "string",
                "The list of ports that are exposed by this service.",
            ),
            AGE,
            wide(
                "Selector",
                "string",
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let svc_type = spec
            .type_
            .clone()
            .unwrap_or_else(|| "ClusterIP".to_string());
        // The internal type's clusterIPs[0]: clusterIP wins when both are set.
        let cluster_ip = match spec.cluster_ip.as_deref() {
            Some(ip) if !ip.is_empty() => ip.to_string(),
            _ => spec
                .cluster_ips
                .iter()
                .flatten()
                .next()
                .cloned()
                .unwrap_or_default(),
        };
        let cluster_ip = if cluster_ip.is_empty() {
            "<none>".to_string()
        } else {
            cluster_ip
        };
        let ports = make_port_string(spec.ports.as_deref().unwrap_or_default());
        let ports = if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports
        };
        vec![
            name(&self.metadata),
            json!(svc_type),
            json!(cluster_ip),
            json!(external_ip(self, &svc_type)),
            json!(ports),
            age(&self.metadata, now),
            json!(format_labels(spec.selector.as_ref())),
        ]
    }
}

/// `getServiceExternalIP` with wide output (no truncation of load-balancer addresses).
fn external_ip(svc: &Service, svc_type: &str) -> String {
    let spec = svc.spec.clone().unwrap_or_default();
    let external_ips = spec.external_ips.unwrap_or_default();
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let ingress = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref());
            let lb_ips = lb_ingress(
                ingress
                    .into_iter()
                    .flatten()
                    .map(|i| (i.ip.as_ref(), i.hostname.as_ref())),
            );
            if !external_ips.is_empty() {
                let mut results: Vec<String> = Vec::new();
                if !lb_ips.is_empty() {
                    results.extend(lb_ips.split(',').map(str::to_string));
                }
                results.extend(external_ips);
                results.join(",")
            } else if !lb_ips.is_empty() {
                lb_ips
            } else {
                "<pending>".to_string()
            }
        }
        "ExternalName" => s(spec.external_name.as_ref()),
        _ => "<unknown>".to_string(),
    }
}

/// `makePortString`: `port/proto` or `port:nodePort/proto`, comma separated.
pub(crate) fn make_port_string(ports: &[ServicePort]) -> String {
    ports
        .iter()
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            match p.node_port {
                Some(np) if np > 0 => format!("{}:{}/{}", p.port, np, proto),
                _ => format!("{}/{}", p.port, proto),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl TablePrinter for Endpoints {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Endpoints",
                "string",
                "The set of all endpoints is the union of all subsets.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        vec![
            name(&self.metadata),
            json!(format_endpoints(self)),
            age(&self.metadata, now),
        ]
    }
}

/// `formatEndpoints` for all ports: up to three `ip:port` entries, then "+ N more...".
fn format_endpoints(ep: &Endpoints) -> String {
    let subsets = ep.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = ss.addresses.as_deref().unwrap_or_default();
        let ports = ss.ports.as_deref().unwrap_or_default();
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(a.ip.clone());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(&a.ip, port.port));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - MAX);
    }
    ret
}

impl TablePrinter for EndpointSlice {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "AddressType",
                "string",
                "addressType specifies the type of address carried by this EndpointSlice.",
            ),
            col(
                "Ports",
                "string",
                "ports specifies the list of network ports exposed by each endpoint in this slice.",
            ),
            col(
                "Endpoints",
                "string",
                "endpoints is a list of unique endpoints in this slice.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let ports = first_three(
            self.ports
                .iter()
                .flatten()
                .map(|p| match (&p.port, &p.name) {
                    (Some(port), _) => port.to_string(),
                    (None, Some(name)) => name.clone(),
                    (None, None) => "*".to_string(),
                }),
        );
        let endpoints = first_three(
            self.endpoints
                .iter()
                .flatten()
                .flat_map(|e| e.addresses.iter().cloned()),
        );
        vec![
            name(&self.metadata),
            json!(self.address_type),
            json!(ports),
            json!(endpoints),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for Ingress {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for additional configuration",
            ),
            col(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            col(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
            ),
            col("Ports", "string", "Ports of TLS configurations that open"),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let class = spec
            .ingress_class_name
            .clone()
            .unwrap_or_else(|| "<none>".to_string());
        let ingress = self
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref());
        let address = lb_ingress(
            ingress
                .into_iter()
                .flatten()
                .map(|i| (i.ip.as_ref(), i.hostname.as_ref())),
        );
        let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
            "80, 443"
        } else {
            "80"
        };
        vec![
            name(&self.metadata),
            json!(class),
            json!(format_hosts(spec.rules.as_deref().unwrap_or_default())),
            json!(address),
            json!(ports),
            age(&self.metadata, now),
        ]
    }
}

/// `formatHosts`: up to three non-empty hosts, `*` when there are none.
fn format_hosts(rules: &[IngressRule]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        match rule.host.as_deref() {
            Some(h) if !more && !h.is_empty() => list.push(h.to_string()),
            _ => {}
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len() - MAX);
    }
    ret
}

impl TablePrinter for IngressClass {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            col(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let spec = self.spec.clone().unwrap_or_default();
        let parameters = match &spec.parameters {
            None => "<none>".to_string(),
            Some(p) => match &p.api_group {
                Some(g) => format!("{}.{}/{}", p.kind, g, p.name),
                None => format!("{}/{}", p.kind, p.name),
            },
        };
        vec![
            name(&self.metadata),
            json!(s(spec.controller.as_ref())),
            json!(parameters),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for NetworkPolicy {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "Pod-Selector",
                "string",
                "Selects the pods to which this NetworkPolicy object applies.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        // The internal podSelector is a value, so an absent one is the empty selector.
        let selector = self
            .spec
            .as_ref()
            .and_then(|s| s.pod_selector.clone())
            .unwrap_or_default();
        vec![
            name(&self.metadata),
            json!(format_label_selector(Some(&selector))),
            age(&self.metadata, now),
        ]
    }
}

impl TablePrinter for ServiceCIDR {
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "CIDRs",
                "string",
                "CIDRs defines the IP blocks in CIDR notation (e.g. \"192.168.0.0/24\" or \"2001:db8::/64\") from which to assign service cluster IPs.",
            ),
            AGE,
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let cidrs = self
            .spec
            .as_ref()
            .and_then(|s| s.cidrs.clone())
            .unwrap_or_default()
            .join(",");
        vec![name(&self.metadata), json!(cidrs), age(&self.metadata, now)]
    }
}

impl TablePrinter for IPAddress {
    /// Upstream defines two columns but emits an age cell as a third value.
    fn columns() -> Option<Vec<ColumnDef>> {
        Some(vec![
            NAME,
            col(
                "ParentRef",
                "string",
                "ParentRef references the resource that an IPAddress is attached to.",
            ),
        ])
    }

    fn cells(&self, now: Timestamp) -> Vec<Value> {
        let parent = match Some(&self.spec.parent_ref) {
            None => "<none>".to_string(),
            Some(p) => {
                let group = s(p.group.as_ref());
                let gr = if group.is_empty() {
                    p.resource.clone()
                } else {
                    format!("{}.{}", p.resource, group)
                };
                let mut out = gr.to_lowercase();
                if let Some(ns) = p.namespace.as_deref().filter(|ns| !ns.is_empty()) {
                    out.push('/');
                    out.push_str(ns);
                }
                out.push('/');
                out.push_str(&p.name);
                out
            }
        };
        vec![
            name(&self.metadata),
            json!(parent),
            age(&self.metadata, now),
        ]
    }
}
