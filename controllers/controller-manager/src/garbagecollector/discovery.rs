//! API discovery for the lifecycle controllers (client-go `discovery.ServerGroupsAndResources`,
//! `ServerPreferredResources` and a RESTMapper): every served group version, tolerating failures
//! of single groups as upstream's `ErrGroupDiscoveryFailed` does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList;
use kube::Client;
use kube::core::ApiResource;
use std::collections::HashSet;

/// One resource served at one group version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    pub ar: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
}

impl ResourceInfo {
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `resource.group` as upstream prints a GroupResource.
    pub fn group_resource(&self) -> String {
        format!("{}.{}", self.ar.plural, self.ar.group)
    }
}

/// The outcome of one discovery pass.
#[derive(Clone, Debug, Default)]
pub struct Discovered {
    /// Every resource of every served group version, preferred versions first within a group.
    pub all: Vec<ResourceInfo>,
    /// Group versions whose resource list could not be read, with the reason.
    pub failed: Vec<(String, String)>,
}

impl Discovered {
    /// For each group and resource, the entry of the most preferred version serving it
    /// (`ServerPreferredResources`).
    pub fn preferred(&self) -> Vec<&ResourceInfo> {
        let mut seen = HashSet::new();
        self.all
            .iter()
            .filter(|r| seen.insert((r.ar.group.clone(), r.ar.plural.clone())))
            .collect()
    }

    /// The resource serving `kind` at `api_version` (a RESTMapper lookup).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&ResourceInfo> {
        let (group, version) = split_api_version(api_version);
        self.all
            .iter()
            .find(|r| r.ar.group == group && r.ar.version == version && r.ar.kind == kind)
    }

    /// The upstream message of a partial discovery failure, if any group failed.
    pub fn failure_message(&self) -> Option<String> {
        if self.failed.is_empty() {
            return None;
        }
        let mut parts: Vec<String> = self
            .failed
            .iter()
            .map(|(gv, e)| format!("{gv}: {e}"))
            .collect();
        parts.sort();
        Some(format!(
            "unable to retrieve the complete list of server APIs: {}",
            parts.join(", ")
        ))
    }
}

/// `group/version` or `version` (core) split into group and version.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn push_list(out: &mut Discovered, group: &str, version: &str, list: APIResourceList) {
    let api_version = list.group_version.clone();
    for r in list.resources {
        if r.name.contains('/') {
            continue;
        }
        out.all.push(ResourceInfo {
            ar: ApiResource {
                group: r.group.clone().unwrap_or_else(|| group.to_string()),
                version: r.version.clone().unwrap_or_else(|| version.to_string()),
                api_version: api_version.clone(),
                kind: r.kind.clone(),
                plural: r.name.clone(),
            },
            namespaced: r.namespaced,
            verbs: r.verbs.clone(),
        });
    }
}

/// Discovers every group version. Fails only when the group lists themselves cannot be read.
pub async fn discover(client: &Client) -> anyhow::Result<Discovered> {
    let mut out = Discovered::default();
    let core = client.list_core_api_versions().await?;
    for v in &core.versions {
        match client.list_core_api_resources(v).await {
            Ok(list) => push_list(&mut out, "", v, list),
            Err(e) => out.failed.push((v.clone(), e.to_string())),
        }
    }
    let groups = client.list_api_groups().await?;
    for g in groups.groups {
        let preferred = g.preferred_version.as_ref().map(|p| p.version.clone());
        let mut versions: Vec<_> = g.versions.iter().map(|v| v.version.clone()).collect();
        if let Some(p) = &preferred {
            versions.sort_by_key(|v| v != p);
        }
        for v in versions {
            let gv = format!("{}/{v}", g.name);
            match client.list_api_group_resources(&gv).await {
                Ok(list) => push_list(&mut out, &g.name, &v, list),
                Err(e) => out.failed.push((gv, e.to_string())),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(group: &str, version: &str, plural: &str, kind: &str) -> ResourceInfo {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        ResourceInfo {
            ar: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version,
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced: true,
            verbs: vec!["list".into()],
        }
    }

    #[test]
    fn preferred_takes_first_version_per_group_resource_and_resolve_maps_kinds() {
        let d = Discovered {
            all: vec![
                info("apps", "v1", "deployments", "Deployment"),
                info("x.io", "v2", "widgets", "Widget"),
                info("x.io", "v1", "widgets", "Widget"),
                info("x.io", "v1", "gadgets", "Gadget"),
            ],
            failed: vec![("y.io/v1".into(), "boom".into())],
        };
        let p: Vec<String> = d
            .preferred()
            .iter()
            .map(|r| r.ar.api_version.clone() + "/" + &r.ar.plural)
            .collect();
        assert_eq!(
            p,
            ["apps/v1/deployments", "x.io/v2/widgets", "x.io/v1/gadgets"]
        );
        assert_eq!(d.resolve("x.io/v1", "Widget").unwrap().ar.version, "v1");
        assert!(d.resolve("apps/v2", "Deployment").is_none());
        assert_eq!(
            d.failure_message().unwrap(),
            "unable to retrieve the complete list of server APIs: y.io/v1: boom"
        );
    }
}
