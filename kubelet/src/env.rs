//! A container's environment: `env` (value, fieldRef, resourceFieldRef, configMapKeyRef,
//! secretKeyRef), `envFrom`, the Service variables, and `$(VAR)` expansion in values, command and
//! args (upstream `pkg/kubelet/kubelet_pods.go` makeEnvironmentVariables,
//! `third_party/forked/golang/expansion`, `pkg/kubelet/envvars`).

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::{BTreeMap, HashMap};

/// Where ConfigMaps and Secrets come from (the API in the kubelet, maps in tests).
pub trait EnvSource {
    fn config_map(&self, ns: &str, name: &str) -> Option<ConfigMap>;
    fn secret(&self, ns: &str, name: &str) -> Option<Secret>;
    /// The Services visible to the pod for service links.
    fn services(&self, ns: &str) -> Vec<Service>;
}

/// Expands `$(NAME)` from `vars`; `$$` is an escaped `$`; unknown references stay as written.
pub fn expand(input: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push_str(&input[last..i]);
                    out.push('$');
                    i += 2;
                    last = i;
                    continue;
                }
                b'(' => {
                    if let Some(close) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + close];
                        out.push_str(&input[last..i]);
                        match vars(name) {
                            Some(v) => out.push_str(&v),
                            None => out.push_str(&input[i..i + 3 + close]),
                        }
                        i += 3 + close;
                        last = i;
                        continue;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push_str(&input[last..]);
    out
}

fn format_labels(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `fieldRef` values (upstream podFieldSelectorRuntimeValue + ExtractFieldPathAsString).
pub fn field_value(
    pod: &Pod,
    path: &str,
    host_ip: &str,
    pod_ips: &[String],
) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |prefix: &str| -> Option<String> {
        let rest = path
            .strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")?;
        Some(rest.to_string())
    };
    if let Some(k) = subscript("metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    if let Some(k) = subscript("metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_labels(meta.labels.as_ref().unwrap_or(&BTreeMap::new())),
        "metadata.annotations" => {
            format_labels(meta.annotations.as_ref().unwrap_or(&BTreeMap::new()))
        }
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => host_ip.to_string(),
        "status.hostIPs" => host_ip.to_string(),
        "status.podIP" => pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => pod_ips.join(","),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

fn quantity_value(q: &Quantity) -> f64 {
    parse_quantity(&q.0).unwrap_or(0.0)
}

/// A Kubernetes quantity as a number (cores, bytes).
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with('e') || s.starts_with('E') => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(n * mult)
}

/// `resourceFieldRef` (upstream ExtractContainerResourceValue): limits default to the node's
/// allocatable; the result is rounded up to the divisor.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&Quantity>,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, String> {
    let res = c.resources.as_ref();
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let pick =
        |m: Option<&BTreeMap<String, Quantity>>| m.and_then(|m| m.get(name)).map(quantity_value);
    let value = match kind {
        "limits" => pick(res.and_then(|r| r.limits.as_ref()))
            .or_else(|| allocatable.get(name).map(quantity_value)),
        "requests" => pick(res.and_then(|r| r.requests.as_ref())).or(Some(0.0)),
        _ => None,
    }
    .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let div = divisor
        .map(quantity_value)
        .filter(|d| *d > 0.0)
        .unwrap_or(1.0);
    let v = (value / div).ceil();
    // cpu requests of 0 still report 1 when the divisor is 1 core, as upstream's rounding does.
    let v = if name == "cpu" && kind == "requests" && v == 0.0 && value > 0.0 {
        1.0
    } else {
        v
    };
    Ok(format!("{}", v as i64))
}

fn service_env(services: &[Service], out: &mut Vec<(String, String)>) {
    for svc in services {
        let Some(spec) = &svc.spec else { continue };
        let Some(ip) = spec.cluster_ip.as_deref() else {
            continue;
        };
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let name = svc
            .metadata
            .name
            .clone()
            .unwrap_or_default()
            .to_uppercase()
            .replace('-', "_");
        let ports = spec.ports.clone().unwrap_or_default();
        let Some(first) = ports.first() else { continue };
        out.push((format!("{name}_SERVICE_HOST"), ip.to_string()));
        out.push((format!("{name}_SERVICE_PORT"), first.port.to_string()));
        for p in &ports {
            if let Some(pn) = &p.name {
                out.push((
                    format!(
                        "{name}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                ));
            }
        }
        let proto = first.protocol.clone().unwrap_or_else(|| "TCP".into());
        let url_ip = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_string()
        };
        out.push((
            format!("{name}_PORT"),
            format!("{}://{url_ip}:{}", proto.to_lowercase(), first.port),
        ));
        for p in &ports {
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            let prefix = format!("{name}_PORT_{}_{}", p.port, proto.to_uppercase());
            out.push((
                prefix.clone(),
                format!("{}://{url_ip}:{}", proto.to_lowercase(), p.port),
            ));
            out.push((format!("{prefix}_PROTO"), proto.to_lowercase()));
            out.push((format!("{prefix}_PORT"), p.port.to_string()));
            out.push((format!("{prefix}_ADDR"), ip.to_string()));
        }
    }
}

/// The container's environment in order (later entries win when names repeat, as the runtime
/// applies them). Errors carry upstream's CreateContainerConfigError messages.
pub fn make_environment(
    pod: &Pod,
    c: &Container,
    src: &dyn EnvSource,
    host_ip: &str,
    pod_ips: &[String],
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let spec = pod.spec.as_ref();
    let mut out: Vec<(String, String)> = Vec::new();
    // Service links: the pod's namespace (when enabled) and the master service.
    let mut services: Vec<Service> = Vec::new();
    let links = spec.and_then(|s| s.enable_service_links).unwrap_or(true);
    for s in src.services(&ns) {
        if links {
            services.push(s);
        }
    }
    if ns != "default" {
        for s in src.services("default") {
            if s.metadata.name.as_deref() == Some("kubernetes") {
                services.push(s);
            }
        }
    } else if !links {
        services.extend(
            src.services("default")
                .into_iter()
                .filter(|s| s.metadata.name.as_deref() == Some("kubernetes")),
        );
    }
    service_env(&services, &mut out);

    let mut vars: HashMap<String, String> = out.iter().cloned().collect();
    let mut mine: Vec<(String, String)> = Vec::new();
    let set = |k: String,
               v: String,
               vars: &mut HashMap<String, String>,
               mine: &mut Vec<(String, String)>| {
        vars.insert(k.clone(), v.clone());
        mine.push((k, v));
    };
    for from in c.env_from.clone().unwrap_or_default() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match src.config_map(&ns, &r.name) {
                Some(cm) => {
                    for (k, v) in cm.data.unwrap_or_default() {
                        set(format!("{prefix}{k}"), v, &mut vars, &mut mine);
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap \"{}\" not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match src.secret(&ns, &r.name) {
                Some(s) => {
                    for (k, v) in s.data.unwrap_or_default() {
                        set(
                            format!("{prefix}{k}"),
                            String::from_utf8_lossy(&v.0).into_owned(),
                            &mut vars,
                            &mut mine,
                        );
                    }
                }
                None if optional => {}
                None => return Err(format!("secret \"{}\" not found", r.name)),
            }
        }
    }
    for e in c.env.clone().unwrap_or_default() {
        let value = if let Some(v) = &e.value {
            let lookup = |n: &str| vars.get(n).cloned();
            expand(v, &lookup)
        } else if let Some(from) = &e.value_from {
            if let Some(f) = &from.field_ref {
                field_value(pod, &f.field_path, host_ip, pod_ips)?
            } else if let Some(r) = &from.resource_field_ref {
                resource_value(c, &r.resource, r.divisor.as_ref(), allocatable)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                match src.config_map(&ns, &r.name) {
                    Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => v.clone(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in ConfigMap {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    },
                    None if optional => continue,
                    None => return Err(format!("configmap \"{}\" not found", r.name)),
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                match src.secret(&ns, &r.name) {
                    Some(s) => match s.data.as_ref().and_then(|d| d.get(&r.key)) {
                        Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                        None if optional => continue,
                        None => {
                            return Err(format!(
                                "couldn't find key {} in Secret {ns}/{}",
                                r.key, r.name
                            ));
                        }
                    },
                    None if optional => continue,
                    None => return Err(format!("secret \"{}\" not found", r.name)),
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        set(e.name.clone(), value, &mut vars, &mut mine);
    }
    out.extend(mine);
    Ok(out)
}

/// The container's command and args with `$(VAR)` expanded from its environment.
pub fn expand_command(c: &Container, env: &[(String, String)]) -> (Vec<String>, Vec<String>) {
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |n: &str| vars.get(n).map(|v| v.to_string());
    let cmd = c
        .command
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|s| expand(s, &lookup))
        .collect();
    let args = c
        .args
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|s| expand(s, &lookup))
        .collect();
    (cmd, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec};

    struct NoSource;
    impl EnvSource for NoSource {
        fn config_map(&self, _: &str, _: &str) -> Option<ConfigMap> {
            None
        }
        fn secret(&self, _: &str, _: &str) -> Option<Secret> {
            None
        }
        fn services(&self, _: &str) -> Vec<Service> {
            vec![]
        }
    }

    #[test]
    fn expansion_follows_upstream_rules() {
        let vars = |n: &str| match n {
            "A" => Some("alpha".to_string()),
            _ => None,
        };
        assert_eq!(expand("x-$(A)-y", &vars), "x-alpha-y");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$(A", &vars), "$(A");
        assert_eq!(expand("cost $5", &vars), "cost $5");
    }

    #[test]
    fn env_refers_to_earlier_vars_and_pod_fields() {
        let pod = Pod {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: None,
        };
        let c = Container {
            name: "c".into(),
            env: Some(vec![
                EnvVar {
                    name: "A".into(),
                    value: Some("1".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "B".into(),
                    value: Some("$(A)-2-$(POD)".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "POD".into(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                },
            ]),
            command: Some(vec!["echo".into(), "$(B)".into(), "$(POD)".into()]),
            ..Default::default()
        };
        let env = make_environment(&pod, &c, &NoSource, "10.0.0.5", &[], &BTreeMap::new()).unwrap();
        assert_eq!(
            env,
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "1-2-$(POD)".to_string()),
                ("POD".to_string(), "p".to_string()),
            ]
        );
        let (cmd, _) = expand_command(&c, &env);
        assert_eq!(cmd, vec!["echo", "1-2-$(POD)", "p"]);
    }

    #[test]
    fn missing_config_map_is_an_error_unless_optional() {
        let pod = Pod {
            metadata: Default::default(),
            spec: None,
            status: None,
        };
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}}]
        }))
        .unwrap();
        let err = make_environment(&pod, &c, &NoSource, "", &[], &BTreeMap::new()).unwrap_err();
        assert_eq!(err, "configmap \"cfg\" not found");
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "envFrom": [{"configMapRef": {"name": "cfg", "optional": true}}]
        }))
        .unwrap();
        assert!(
            make_environment(&pod, &c, &NoSource, "", &[], &BTreeMap::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn resource_refs_round_up_to_the_divisor() {
        let c: Container = serde_json::from_value(serde_json::json!({
            "name": "c", "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}
        }))
        .unwrap();
        let alloc = BTreeMap::from([("cpu".to_string(), Quantity("2".into()))]);
        assert_eq!(
            resource_value(&c, "limits.memory", Some(&Quantity("1Mi".into())), &alloc).unwrap(),
            "64"
        );
        assert_eq!(resource_value(&c, "limits.cpu", None, &alloc).unwrap(), "2");
        assert_eq!(
            resource_value(&c, "requests.cpu", Some(&Quantity("1m".into())), &alloc).unwrap(),
            "250"
        );
        assert_eq!(
            resource_value(&c, "requests.cpu", None, &alloc).unwrap(),
            "1"
        );
    }
}
