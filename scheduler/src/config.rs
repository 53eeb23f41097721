//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1) as read from `--config`, and
//! building each profile's framework from it (mirrors upstream `pkg/scheduler/apis/config`
//! and the plugin-set merging of `framework/runtime`): the default multi-point plugins, with
//! per-extension-point enabled/disabled lists (`*` disables all defaults) and pluginConfig args.

use crate::framework::runtime::{Framework, Nominator};
use crate::framework::{ClusterEvent, Plugin};
use crate::plugins::{Handle, default_plugins, registry};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeSchedulerConfiguration {
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub client_connection: Option<ClientConnection>,
    #[serde(default)]
    pub leader_election: Option<LeaderElection>,
    /// 0 = adaptive (50 - nodes/125 %, at least 5 %).
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    /// Defaults 1 and 10.
    #[serde(default)]
    pub pod_initial_backoff_seconds: Option<u64>,
    #[serde(default)]
    pub pod_max_backoff_seconds: Option<u64>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    #[serde(default)]
    pub kubeconfig: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElection {
    pub leader_elect: Option<bool>,
    pub lease_duration: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub resource_name: Option<String>,
    pub resource_namespace: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    #[serde(default)]
    pub scheduler_name: Option<String>,
    #[serde(default)]
    pub percentage_of_nodes_to_score: Option<i32>,
    #[serde(default)]
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    pub multi_point: Option<PluginSet>,
    pub queue_sort: Option<PluginSet>,
    pub pre_filter: Option<PluginSet>,
    pub filter: Option<PluginSet>,
    pub post_filter: Option<PluginSet>,
    pub pre_score: Option<PluginSet>,
    pub score: Option<PluginSet>,
    pub reserve: Option<PluginSet>,
    pub permit: Option<PluginSet>,
    pub pre_bind: Option<PluginSet>,
    pub bind: Option<PluginSet>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct PluginRef {
    pub name: String,
    #[serde(default)]
    pub weight: Option<i64>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: Option<serde_json::Value>,
}

impl KubeSchedulerConfiguration {
    pub fn parse(yaml: &str) -> anyhow::Result<Self> {
        let cfg: KubeSchedulerConfiguration = serde_yaml::from_str(yaml)?;
        if let Some(v) = cfg.api_version.as_deref()
            && v != "kubescheduler.config.k8s.io/v1"
        {
            anyhow::bail!("no kind \"KubeSchedulerConfiguration\" is registered for version {v:?}");
        }
        if let Some(p) = cfg.percentage_of_nodes_to_score
            && !(0..=100).contains(&p)
        {
            anyhow::bail!(
                "percentageOfNodesToScore: Invalid value: {p}: not in valid range [0-100]"
            );
        }
        let mut seen = std::collections::HashSet::new();
        for p in &cfg.profiles {
            let name = p
                .scheduler_name
                .clone()
                .unwrap_or_else(|| "default-scheduler".into());
            if !seen.insert(name.clone()) {
                anyhow::bail!("profiles[].schedulerName: Duplicate value: {name:?}");
            }
        }
        Ok(cfg)
    }

    /// The profiles, or the one default profile.
    pub fn profiles(&self) -> Vec<Profile> {
        if self.profiles.is_empty() {
            vec![Profile::default()]
        } else {
            self.profiles.clone()
        }
    }
}

type Point = fn(&Plugins) -> Option<&PluginSet>;

/// Builds a profile's framework. All profiles share `nominator`.
pub fn build_framework(
    profile: &Profile,
    handle: &Handle,
    nominator: Arc<Nominator>,
) -> anyhow::Result<Framework> {
    let name = profile
        .scheduler_name
        .clone()
        .unwrap_or_else(|| "default-scheduler".into());
    let reg: HashMap<&str, crate::plugins::Factory> = registry().into_iter().collect();
    let plugins = profile.plugins.clone().unwrap_or_default();
    let defaults: HashMap<&str, i64> = default_plugins().into_iter().collect();
    // Multi-point list: defaults minus disabled, plus enabled.
    let mut multi: Vec<(String, i64)> = default_plugins()
        .into_iter()
        .map(|(n, w)| (n.to_string(), w))
        .collect();
    if let Some(mp) = &plugins.multi_point {
        apply(&mut multi, mp, &defaults);
    }
    let mut instances: HashMap<String, Arc<dyn Plugin>> = HashMap::new();
    let mut instance = |n: &str| -> anyhow::Result<Arc<dyn Plugin>> {
        if let Some(p) = instances.get(n) {
            return Ok(p.clone());
        }
        let f = reg
            .get(n)
            .ok_or_else(|| anyhow::anyhow!("plugin {n:?} does not exist"))?;
        let args = profile
            .plugin_config
            .iter()
            .find(|c| c.name == n)
            .and_then(|c| c.args.as_ref());
        let p = f(args, handle)?;
        instances.insert(n.to_string(), p.clone());
        Ok(p)
    };
    let mut fw = Framework::empty(&name);
    fw.nominator = nominator;
    fw.percentage_of_nodes_to_score = profile.percentage_of_nodes_to_score;
    let points: [(Point, u8); 9] = [
        (|p| p.pre_filter.as_ref(), 0),
        (|p| p.filter.as_ref(), 1),
        (|p| p.post_filter.as_ref(), 2),
        (|p| p.pre_score.as_ref(), 3),
        (|p| p.score.as_ref(), 4),
        (|p| p.reserve.as_ref(), 5),
        (|p| p.permit.as_ref(), 6),
        (|p| p.pre_bind.as_ref(), 7),
        (|p| p.bind.as_ref(), 8),
    ];
    for (get, point) in points {
        let mut list = multi.clone();
        if let Some(set) = get(&plugins) {
            apply(&mut list, set, &defaults);
        }
        for (n, w) in list {
            let p = instance(&n)?;
            fw.events.insert(n.clone(), p.events());
            match point {
                0 => fw.pre_filter.extend(p.pre_filter()),
                1 => fw.filter.extend(p.filter()),
                2 => fw.post_filter.extend(p.post_filter()),
                3 => fw.pre_score.extend(p.pre_score()),
                4 => fw.score.extend(p.score().map(|s| (s, w))),
                5 => fw.reserve.extend(p.reserve()),
                6 => fw.permit.extend(p.permit()),
                7 => fw.pre_bind.extend(p.pre_bind()),
                _ => fw.bind.extend(p.bind()),
            }
        }
    }
    if fw.bind.is_empty() {
        anyhow::bail!(
            "at least one bind plugin is needed for profile with scheduler name {name:?}"
        );
    }
    Ok(fw)
}

fn apply(list: &mut Vec<(String, i64)>, set: &PluginSet, defaults: &HashMap<&str, i64>) {
    for d in &set.disabled {
        if d.name == "*" {
            list.clear();
        } else {
            list.retain(|(n, _)| *n != d.name);
        }
    }
    for e in &set.enabled {
        let w = e
            .weight
            .filter(|w| *w > 0)
            .or_else(|| defaults.get(e.name.as_str()).copied())
            .unwrap_or(1);
        match list.iter_mut().find(|(n, _)| *n == e.name) {
            Some(x) => x.1 = w,
            None => list.push((e.name.clone(), w)),
        }
    }
}

/// Events every plugin of every profile registered, for the queue.
pub fn plugin_events(fws: &[&Framework]) -> HashMap<String, Vec<ClusterEvent>> {
    let mut out: HashMap<String, Vec<ClusterEvent>> = HashMap::new();
    for fw in fws {
        for (n, evs) in &fw.events {
            let e = out.entry(n.clone()).or_default();
            for ev in evs.iter() {
                if !e.contains(ev) {
                    e.push(*ev);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_has_upstreams_plugins_and_weights() {
        let fw = build_framework(&Profile::default(), &Handle::default(), Arc::default()).unwrap();
        let filters: Vec<&str> = fw.filter.iter().map(|p| p.name()).collect();
        assert_eq!(
            filters,
            vec![
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        let scores: Vec<(&str, i64)> = fw.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert_eq!(
            scores,
            vec![
                ("TaintToleration", 3),
                ("NodeAffinity", 2),
                ("NodeResourcesFit", 1),
                ("PodTopologySpread", 2),
                ("InterPodAffinity", 2),
                ("NodeResourcesBalancedAllocation", 1),
                ("ImageLocality", 1)
            ]
        );
        assert_eq!(fw.post_filter.len(), 1);
        assert_eq!(fw.bind.len(), 1);
    }

    #[test]
    fn yaml_profiles_enable_disable_and_args() {
        let cfg = KubeSchedulerConfiguration::parse(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
leaderElection:
  leaderElect: false
profiles:
- schedulerName: bin-packer
  plugins:
    score:
      disabled:
      - name: "*"
      enabled:
      - name: NodeResourcesFit
        weight: 5
    filter:
      disabled:
      - name: TaintToleration
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 2
  - name: PodTopologySpread
    args:
      defaultingType: List
      defaultConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: ScheduleAnyway
"#,
        )
        .unwrap();
        assert_eq!(cfg.percentage_of_nodes_to_score, Some(30));
        assert_eq!(
            cfg.leader_election.as_ref().unwrap().leader_elect,
            Some(false)
        );
        let p = &cfg.profiles()[0];
        let fw = build_framework(p, &Handle::default(), Arc::default()).unwrap();
        assert_eq!(fw.scheduler_name, "bin-packer");
        let scores: Vec<(&str, i64)> = fw.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert_eq!(scores, vec![("NodeResourcesFit", 5)]);
        assert!(!fw.filter.iter().any(|f| f.name() == "TaintToleration"));
        assert!(fw.pre_score.iter().any(|f| f.name() == "TaintToleration"));
        let bad = Profile {
            plugins: Some(Plugins {
                filter: Some(PluginSet {
                    enabled: vec![PluginRef {
                        name: "Nope".into(),
                        weight: None,
                    }],
                    disabled: vec![],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = build_framework(&bad, &Handle::default(), Arc::default())
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "plugin \"Nope\" does not exist");
        assert!(KubeSchedulerConfiguration::parse("percentageOfNodesToScore: 101").is_err());
    }
}
