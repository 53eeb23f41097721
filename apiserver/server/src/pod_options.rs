//! Options of the pod subresources served by kubelets — PodLogOptions, PodExecOptions,
//! PodAttachOptions, PodPortForwardOptions: decoding from the query as upstream's parameter
//! codec does, validation (pkg/apis/core/validation ValidatePodLogOptions), container selection
//! and the kubelet URLs (pkg/registry/core/pod/strategy.go LogLocation, streamLocation,
//! PortForwardLocation, validateContainer).

use apiserver_apimachinery::{ApiError, FieldError, FieldPath};
use k8s_openapi::api::core::v1::Pod;

/// The query's pairs, in order (repeated keys kept).
pub type Params = Vec<(String, String)>;

pub fn parse_params(query: Option<&str>) -> Params {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn first<'a>(p: &'a Params, key: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Go's query bool: absent is false; "0" and "false" (any case) are false; anything else true.
fn flag(p: &Params, key: &str) -> bool {
    match first(p, key) {
        None => false,
        Some(v) => !(v == "0" || v.eq_ignore_ascii_case("false")),
    }
}

fn int64(p: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    match first(p, key) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("strconv.ParseInt: parsing {v:?}: invalid syntax"))
        }),
    }
}

/// Go's `url.Values.Encode`: keys sorted, values in order, `QueryEscape`d.
pub fn encode_query(pairs: &[(&str, String)]) -> String {
    fn escape(s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    out.push(b as char)
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
        out
    }
    let mut sorted: Vec<&(&str, String)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", escape(k), escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// One path segment of a kubelet URL (names are DNS labels; anything else is escaped).
pub fn escape_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
        .to_string()
        .replace("%2D", "-")
        .replace("%2E", ".")
        .replace("%5F", "_")
        .replace("%7E", "~")
}

/// `PodLogOptions` from the query of `pods/{name}/log`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogOptions {
    pub container: String,
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since_seconds: Option<i64>,
    pub since_time: Option<jiff::Timestamp>,
    pub tail_lines: Option<i64>,
    pub limit_bytes: Option<i64>,
    pub insecure_skip_tls_verify_backend: bool,
    pub stream: Option<String>,
}

impl LogOptions {
    /// Decodes the query; a value that does not convert is a 400, as upstream.
    pub fn parse(p: &Params) -> Result<Self, ApiError> {
        let since_time = match first(p, "sinceTime") {
            None => None,
            // Upstream decodes an empty (or "null") sinceTime as the zero time.
            Some("") | Some("null") => Some(
                "0001-01-01T00:00:00Z"
                    .parse()
                    .map_err(|e| ApiError::internal(format!("{e}")))?,
            ),
            Some(s) => Some(s.parse::<jiff::Timestamp>().map_err(|_| {
                ApiError::bad_request(format!(
                    "parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {s:?} as \"2006\""
                ))
            })?),
        };
        Ok(LogOptions {
            container: first(p, "container").unwrap_or("").to_string(),
            follow: flag(p, "follow"),
            previous: flag(p, "previous"),
            timestamps: flag(p, "timestamps"),
            since_seconds: int64(p, "sinceSeconds")?,
            since_time,
            tail_lines: int64(p, "tailLines")?,
            limit_bytes: int64(p, "limitBytes")?,
            insecure_skip_tls_verify_backend: flag(p, "insecureSkipTLSVerifyBackend"),
            stream: first(p, "stream").map(str::to_string),
        })
    }

    /// Upstream's ValidatePodLogOptions with the PodLogsQuerySplitStreams gate off (its
    /// default): a 422 `PodLogOptions "<pod>" is invalid`.
    pub fn validate(&self, pod: &str) -> Result<(), ApiError> {
        let mut errs = Vec::new();
        if let Some(t) = self.tail_lines {
            if t < 0 {
                errs.push(FieldError::invalid(
                    &FieldPath::root("tailLines"),
                    t,
                    "must be greater than or equal to 0",
                ));
            }
        }
        if let Some(l) = self.limit_bytes {
            if l < 1 {
                errs.push(FieldError::invalid(
                    &FieldPath::root("limitBytes"),
                    l,
                    "must be greater than 0",
                ));
            }
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                &FieldPath::root(""),
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(s), None) if s < 1 => errs.push(FieldError::invalid(
                &FieldPath::root("sinceSeconds"),
                s,
                "must be greater than 0",
            )),
            _ => {}
        }
        if self.stream.is_some() {
            errs.push(FieldError::forbidden(
                &FieldPath::root("stream"),
                "may not be specified",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid("", "PodLogOptions", pod, &errs))
        }
    }

    /// The kubelet's query for `/containerLogs/...` (only the options that are set).
    pub fn kubelet_query(&self) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        if self.follow {
            q.push(("follow", "true".into()));
        }
        if self.previous {
            q.push(("previous", "true".into()));
        }
        if self.timestamps {
            q.push(("timestamps", "true".into()));
        }
        if let Some(s) = self.since_seconds {
            q.push(("sinceSeconds", s.to_string()));
        }
        if let Some(t) = self.since_time {
            q.push(("sinceTime", t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        if let Some(t) = self.tail_lines {
            q.push(("tailLines", t.to_string()));
        }
        if let Some(l) = self.limit_bytes {
            q.push(("limitBytes", l.to_string()));
        }
        encode_query(&q)
    }
}

/// Which streaming subresource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Exec,
    Attach,
}

/// `PodExecOptions` / `PodAttachOptions` (attach ignores `command`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub container: String,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub command: Vec<String>,
}

impl StreamOptions {
    pub fn parse(p: &Params, kind: StreamKind) -> Self {
        StreamOptions {
            container: first(p, "container").unwrap_or("").to_string(),
            stdin: flag(p, "stdin"),
            stdout: flag(p, "stdout"),
            stderr: flag(p, "stderr"),
            tty: flag(p, "tty"),
            command: if kind == StreamKind::Exec {
                p.iter()
                    .filter(|(k, _)| k == "command")
                    .map(|(_, v)| v.clone())
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The kubelet's names: `input`, `output`, `error`, `tty` as "1", `command` repeated.
    pub fn kubelet_query(&self) -> String {
        let mut q: Vec<(&str, String)> = Vec::new();
        for (on, name) in [
            (self.stdin, "input"),
            (self.stdout, "output"),
            (self.stderr, "error"),
            (self.tty, "tty"),
        ] {
            if on {
                q.push((name, "1".into()));
            }
        }
        for c in &self.command {
            q.push(("command", c.clone()));
        }
        encode_query(&q)
    }
}

/// `PodPortForwardOptions`: `ports` repeated or comma separated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortForwardOptions {
    pub ports: Vec<u16>,
}

impl PortForwardOptions {
    pub fn parse(p: &Params) -> Result<Self, ApiError> {
        let mut ports = Vec::new();
        for (_, v) in p.iter().filter(|(k, _)| k == "ports") {
            for part in v.split(',') {
                let n = part.parse::<u16>().map_err(|_| {
                    let why = if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                        "value out of range"
                    } else {
                        "invalid syntax"
                    };
                    ApiError::bad_request(format!(
                        "cannot convert to []int32: strconv.ParseUint: parsing {part:?}: {why}"
                    ))
                })?;
                ports.push(n);
            }
        }
        Ok(PortForwardOptions { ports })
    }

    /// The kubelet's query: one `port` with the ports comma separated.
    pub fn kubelet_query(&self) -> String {
        if self.ports.is_empty() {
            return String::new();
        }
        let joined: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        encode_query(&[("port", joined.join(","))])
    }
}

/// Every container name of the pod: init containers, containers, ephemeral containers.
fn all_container_names(pod: &Pod) -> Vec<String> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let mut names: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    names.extend(spec.containers.iter().map(|c| c.name.clone()));
    names.extend(
        spec.ephemeral_containers
            .iter()
            .flatten()
            .map(|c| c.name.clone()),
    );
    names
}

/// The container a request addresses: the one named, or the pod's only container (upstream's
/// validateContainer, with its BadRequest messages).
pub fn select_container(pod: &Pod, requested: &str) -> Result<String, ApiError> {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    if !requested.is_empty() {
        return if all_container_names(pod).iter().any(|c| c == requested) {
            Ok(requested.to_string())
        } else {
            Err(ApiError::bad_request(format!(
                "container {requested} is not valid for pod {name}"
            )))
        };
    }
    let containers = pod.spec.as_ref().map(|s| &s.containers[..]).unwrap_or(&[]);
    match containers {
        [only] => Ok(only.name.clone()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all_container_names(pod).join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(q: &str) -> Params {
        parse_params(Some(q))
    }

    #[test]
    fn log_options_decode_and_kubelet_query() {
        let o = LogOptions::parse(&p(
            "container=c&follow=true&timestamps=1&tailLines=10&limitBytes=5&sinceTime=2024-05-01T10:00:00.5%2B02:00&previous=false",
        ))
        .unwrap();
        assert_eq!(o.container, "c");
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(
            o.kubelet_query(),
            "follow=true&limitBytes=5&sinceTime=2024-05-01T08%3A00%3A00Z&tailLines=10&timestamps=true"
        );
        assert_eq!(LogOptions::parse(&p("")).unwrap().kubelet_query(), "");
        let e = LogOptions::parse(&p("tailLines=abc")).unwrap_err();
        assert_eq!(e.http_code(), 400);
        assert_eq!(
            e.message,
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
    }

    #[test]
    fn log_options_validation_messages() {
        let e = LogOptions::parse(&p("tailLines=-1&limitBytes=0"))
            .unwrap()
            .validate("web")
            .unwrap_err();
        assert_eq!(e.http_code(), 422);
        assert_eq!(
            e.message,
            "PodLogOptions \"web\" is invalid: [tailLines: Invalid value: -1: must be greater than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]"
        );
        let e = LogOptions::parse(&p("sinceSeconds=0"))
            .unwrap()
            .validate("web")
            .unwrap_err();
        assert_eq!(
            e.message,
            "PodLogOptions \"web\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0"
        );
        let e = LogOptions::parse(&p("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z"))
            .unwrap()
            .validate("web")
            .unwrap_err();
        assert!(
            e.message
                .contains("at most one of `sinceTime` or `sinceSeconds`")
        );
        assert!(
            LogOptions::parse(&p("sinceSeconds=5&tailLines=0"))
                .unwrap()
                .validate("web")
                .is_ok()
        );
    }

    #[test]
    fn exec_and_portforward_queries_use_kubelet_names() {
        let o = StreamOptions::parse(
            &p(
                "command=sh&command=-c&command=echo+a%26b&stdin=true&stdout=true&stderr=false&tty=true&container=c",
            ),
            StreamKind::Exec,
        );
        assert_eq!(
            o.kubelet_query(),
            "command=sh&command=-c&command=echo+a%26b&input=1&output=1&tty=1"
        );
        let a = StreamOptions::parse(&p("command=ls&stdout=1&stderr=1"), StreamKind::Attach);
        assert_eq!(a.kubelet_query(), "error=1&output=1");
        let pf = PortForwardOptions::parse(&p("ports=8080&ports=53,443")).unwrap();
        assert_eq!(pf.kubelet_query(), "port=8080%2C53%2C443");
        assert_eq!(
            PortForwardOptions::parse(&p("ports=x"))
                .unwrap_err()
                .message,
            "cannot convert to []int32: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
    }

    #[test]
    fn container_selection() {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b"}]}}))
        .unwrap();
        assert_eq!(
            select_container(&pod, "").unwrap_err().message,
            "a container name must be specified for pod web, choose one of: [init a b]"
        );
        assert_eq!(select_container(&pod, "init").unwrap(), "init");
        assert_eq!(
            select_container(&pod, "zz").unwrap_err().message,
            "container zz is not valid for pod web"
        );
        let one: Pod = serde_json::from_value(
            json!({"metadata": {"name": "one"}, "spec": {"containers": [{"name": "only"}]}}),
        )
        .unwrap();
        assert_eq!(select_container(&one, "").unwrap(), "only");
    }
}
