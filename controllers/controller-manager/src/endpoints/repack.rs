//! Packing endpoint addresses into subsets (mirrors upstream `pkg/api/v1/endpoints/util.go`
//! `RepackSubsets`): addresses that expose the same set of ports share one subset; subsets,
//! addresses and ports come out in a stable order so unchanged endpoints compare equal.

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};
use std::collections::{BTreeMap, BTreeSet};

/// One address exposing one port (or no port, for headless services without ports).
pub struct Entry {
    pub address: EndpointAddress,
    pub ready: bool,
    pub port: Option<EndpointPort>,
}

type PortKey = (String, i32, String, String);

fn port_key(p: &EndpointPort) -> PortKey {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

fn address_key(a: &EndpointAddress) -> (String, String, String, String) {
    let r = a.target_ref.as_ref();
    (
        a.ip.clone(),
        r.and_then(|r| r.namespace.clone()).unwrap_or_default(),
        r.and_then(|r| r.name.clone()).unwrap_or_default(),
        r.and_then(|r| r.uid.clone()).unwrap_or_default(),
    )
}

/// Groups entries into subsets by port set; a ready address wins over a not-ready duplicate.
pub fn repack(entries: Vec<Entry>) -> Vec<EndpointSubset> {
    struct Addr {
        address: EndpointAddress,
        ready: bool,
        ports: BTreeMap<PortKey, EndpointPort>,
    }
    let mut addrs: BTreeMap<(String, String, String, String), Addr> = BTreeMap::new();
    for e in entries {
        let a = addrs
            .entry(address_key(&e.address))
            .or_insert_with(|| Addr {
                address: e.address.clone(),
                ready: e.ready,
                ports: BTreeMap::new(),
            });
        a.ready |= e.ready;
        if let Some(p) = e.port {
            a.ports.insert(port_key(&p), p);
        }
    }
    let mut by_ports: BTreeMap<BTreeSet<PortKey>, EndpointSubset> = BTreeMap::new();
    for a in addrs.into_values() {
        let keys: BTreeSet<PortKey> = a.ports.keys().cloned().collect();
        let subset = by_ports.entry(keys).or_insert_with(|| EndpointSubset {
            addresses: None,
            not_ready_addresses: None,
            ports: if a.ports.is_empty() {
                None
            } else {
                Some(a.ports.values().cloned().collect())
            },
        });
        let list = if a.ready {
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        list.get_or_insert_with(Vec::new).push(a.address);
    }
    by_ports.into_values().collect()
}

/// Subsets as read back from the API, in [`repack`]'s order with empty lists dropped.
pub fn normalized(subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    let mut entries = Vec::new();
    for s in subsets {
        let ports = s.ports.clone().unwrap_or_default();
        let all = s.addresses.into_iter().flatten().map(|a| (a, true)).chain(
            s.not_ready_addresses
                .into_iter()
                .flatten()
                .map(|a| (a, false)),
        );
        for (a, ready) in all {
            if ports.is_empty() {
                entries.push(Entry {
                    address: a.clone(),
                    ready,
                    port: None,
                });
            }
            for p in &ports {
                entries.push(Entry {
                    address: a.clone(),
                    ready,
                    port: Some(p.clone()),
                });
            }
        }
    }
    repack(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..Default::default()
        }
    }

    fn port(name: &str, n: i32) -> Option<EndpointPort> {
        Some(EndpointPort {
            name: Some(name.into()),
            port: n,
            protocol: Some("TCP".into()),
            app_protocol: None,
        })
    }

    #[test]
    fn addresses_with_the_same_ports_share_a_subset() {
        let e = |ip: &str, ready, p| Entry {
            address: addr(ip),
            ready,
            port: p,
        };
        let subsets = repack(vec![
            e("10.0.0.2", true, port("http", 80)),
            e("10.0.0.1", false, port("http", 80)),
            e("10.0.0.3", true, port("http", 8080)),
        ]);
        assert_eq!(subsets.len(), 2);
        let s80 = subsets
            .iter()
            .find(|s| s.ports.as_ref().unwrap()[0].port == 80)
            .unwrap();
        assert_eq!(s80.addresses.as_ref().unwrap().len(), 1);
        assert_eq!(s80.not_ready_addresses.as_ref().unwrap()[0].ip, "10.0.0.1");
        assert_eq!(normalized(subsets.clone()), subsets);
    }
}
