//! Service strategy (mirrors pkg/registry/core/service/strategy.go and the IP and port
//! allocators in pkg/registry/core/service/{ipallocator,portallocator}): cluster IPs from the
//! Service CIDR and node ports from 30000-32767, chosen among those no stored Service holds.

use crate::strategy::Strategy;
use apiserver_apimachinery::names::NameRule;
use apiserver_apimachinery::{FieldError, FieldPath};
use apiserver_apis::ApiType;
use apiserver_storage::cacher::{Filter, WatchCache};
use k8s_openapi::api::core::v1::Service;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const NODE_PORT_MIN: i32 = 30000;
const NODE_PORT_MAX: i32 = 32767;
/// How long a just-allocated value is held back before the cache is trusted to show it.
const RESERVATION: Duration = Duration::from_secs(30);

pub struct ServiceStrategy {
    /// Network and prefix length of `--service-cluster-ip-range`.
    pub network: u32,
    pub prefix: u8,
    cache: OnceLock<Arc<WatchCache>>,
    reserved_ips: Mutex<Vec<(u32, Instant)>>,
    reserved_ports: Mutex<Vec<(i32, Instant)>>,
}

/// Parses `10.0.0.0/24`.
pub fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 30)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

impl ServiceStrategy {
    pub fn new(cidr: &str) -> Option<Self> {
        let (network, prefix) = parse_cidr(cidr)?;
        Some(ServiceStrategy {
            network,
            prefix,
            cache: OnceLock::new(),
            reserved_ips: Mutex::new(Vec::new()),
            reserved_ports: Mutex::new(Vec::new()),
        })
    }

    /// Connects the allocator to the services cache once the store exists.
    pub fn attach(&self, cache: Arc<WatchCache>) {
        let _ = self.cache.set(cache);
    }

    /// The first address of the range: the `kubernetes` Service's.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.network + 1)
    }

    fn contains(&self, ip: u32) -> bool {
        let mask = u32::MAX << (32 - self.prefix);
        ip & mask == self.network
    }

    fn in_use(&self) -> (BTreeSet<u32>, BTreeSet<i32>) {
        let mut ips = BTreeSet::new();
        let mut ports = BTreeSet::new();
        if let Some(c) = self.cache.get() {
            let f = Filter {
                key_prefix: c.prefix.clone(),
                ..Default::default()
            };
            for o in c.list(&f, None, 0).items {
                let Ok(s) = serde_json::from_slice::<Service>(&o.json) else {
                    continue;
                };
                let Some(spec) = s.spec else { continue };
                for ip in spec.cluster_ips.unwrap_or_default() {
                    if let Ok(a) = ip.parse::<Ipv4Addr>() {
                        ips.insert(u32::from(a));
                    }
                }
                for p in spec.ports.unwrap_or_default() {
                    if let Some(np) = p.node_port {
                        ports.insert(np);
                    }
                }
            }
        }
        let now = Instant::now();
        let mut r = self.reserved_ips.lock().unwrap_or_else(|p| p.into_inner());
        r.retain(|(_, t)| now.duration_since(*t) < RESERVATION);
        ips.extend(r.iter().map(|(ip, _)| *ip));
        let mut rp = self
            .reserved_ports
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        rp.retain(|(_, t)| now.duration_since(*t) < RESERVATION);
        ports.extend(rp.iter().map(|(p, _)| *p));
        (ips, ports)
    }

    fn allocate_ip(&self, used: &BTreeSet<u32>) -> Option<u32> {
        let size = 1u32 << (32 - self.prefix);
        let free: Vec<u32> = (1..size - 1)
            .map(|o| self.network + o)
            .filter(|ip| !used.contains(ip))
            .collect();
        if free.is_empty() {
            return None;
        }
        // The first address is kept for the `kubernetes` Service; others are random as upstream.
        let pick = if free[0] == self.network + 1 && free.len() > 1 {
            free[rand::rng().random_range(1..free.len())]
        } else {
            free[rand::rng().random_range(0..free.len())]
        };
        self.reserved_ips
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((pick, Instant::now()));
        Some(pick)
    }

    fn allocate(&self, svc: &mut Service, old: Option<&Service>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let (mut used, mut ports) = self.in_use();
        if let Some(o) = old.and_then(|o| o.spec.as_ref()) {
            for ip in o.cluster_ips.iter().flatten() {
                if let Ok(a) = ip.parse::<Ipv4Addr>() {
                    used.remove(&u32::from(a));
                }
            }
            for p in o.ports.iter().flatten() {
                if let Some(np) = p.node_port {
                    ports.remove(&np);
                }
            }
        }
        let spec = svc.spec.get_or_insert_with(Default::default);
        let ty = spec.type_.clone().unwrap_or_else(|| "ClusterIP".into());
        let ip_path = FieldPath::root("spec").child("clusterIPs").index(0);
        if ty != "ExternalName" {
            match spec.cluster_ip.as_deref() {
                Some("None") => {}
                None | Some("") => {
                    if old.is_none() {
                        match self.allocate_ip(&used) {
                            Some(ip) => {
                                let s = Ipv4Addr::from(ip).to_string();
                                spec.cluster_ip = Some(s.clone());
                                spec.cluster_ips = Some(vec![s]);
                            }
                            None => errs.push(FieldError::internal(&ip_path, "failed to allocate a serviceIP: range is full")),
                        }
                    }
                }
                Some(ip) if old.is_none() => match ip.parse::<Ipv4Addr>() {
                    Ok(a) if !self.contains(u32::from(a)) => errs.push(FieldError::invalid_str(
                        &ip_path,
                        ip,
                        &format!("failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}/{}", Ipv4Addr::from(self.network), self.prefix),
                    )),
                    Ok(a) if used.contains(&u32::from(a)) => errs.push(FieldError::invalid_str(
                        &ip_path,
                        ip,
                        &format!("failed to allocate IP {ip}: provided IP is already allocated"),
                    )),
                    Ok(a) => self.reserved_ips.lock().unwrap_or_else(|p| p.into_inner()).push((u32::from(a), Instant::now())),
                    Err(_) => {}
                },
                Some(_) => {}
            }
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            for (i, p) in spec.ports.iter_mut().flatten().enumerate() {
                let path = FieldPath::root("spec")
                    .child("ports")
                    .index(i)
                    .child("nodePort");
                match p.node_port {
                    Some(np) if np != 0 => {
                        let was_ours = old.and_then(|o| o.spec.as_ref()).is_some_and(|s| {
                            s.ports.iter().flatten().any(|op| op.node_port == Some(np))
                        });
                        if !(NODE_PORT_MIN..=NODE_PORT_MAX).contains(&np) {
                            errs.push(FieldError::invalid(&path, np, &format!("provided port is not in the valid range. The range of valid ports is {NODE_PORT_MIN}-{NODE_PORT_MAX}")));
                        } else if ports.contains(&np) && !was_ours {
                            errs.push(FieldError::invalid(
                                &path,
                                np,
                                "provided port is already allocated",
                            ));
                        } else {
                            ports.insert(np);
                        }
                    }
                    _ => {
                        let free: Vec<i32> = (NODE_PORT_MIN..=NODE_PORT_MAX)
                            .filter(|x| !ports.contains(x))
                            .collect();
                        if free.is_empty() {
                            errs.push(FieldError::internal(
                                &path,
                                "failed to allocate a nodePort: range is full",
                            ));
                            continue;
                        }
                        let np = free[rand::rng().random_range(0..free.len())];
                        ports.insert(np);
                        self.reserved_ports
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((np, Instant::now()));
                        p.node_port = Some(np);
                    }
                }
            }
        }
        errs
    }
}

impl Strategy<Service> for ServiceStrategy {
    fn name_rule(&self) -> NameRule {
        NameRule::Dns1035
    }
    fn has_status(&self) -> bool {
        true
    }
    fn prepare_for_create(&self, svc: &mut Service) {
        svc.status = Some(Default::default());
        apiserver_apis::strategy::service_normalize_cluster_ips(svc, None);
    }
    fn prepare_for_update(&self, new: &mut Service, old: &Service) {
        apiserver_apis::strategy::service_normalize_cluster_ips(new, Some(old));
    }
    fn validate(&self, svc: &Service) -> Vec<FieldError> {
        svc.validate()
    }
    fn validate_update(&self, new: &Service, old: &Service) -> Vec<FieldError> {
        new.validate_update(old)
    }
    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.clusterIP", "spec.type"]
    }
    fn fields(&self, svc: &Service, out: &mut BTreeMap<String, String>) {
        out.insert(
            "spec.clusterIP".into(),
            svc.spec
                .as_ref()
                .and_then(|s| s.cluster_ip.clone())
                .unwrap_or_default(),
        );
        out.insert(
            "spec.type".into(),
            svc.spec
                .as_ref()
                .and_then(|s| s.type_.clone())
                .unwrap_or_default(),
        );
    }
    fn allocate(&self, svc: &mut Service, old: Option<&Service>) -> Vec<FieldError> {
        let mut errs = apiserver_apis::strategy::service_init_ip_family_fields(svc, old, &["IPv4"]);
        errs.extend(ServiceStrategy::allocate(self, svc, old));
        errs
    }
}
