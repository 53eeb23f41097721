//! Turns a request path and method into what it asks for (mirrors
//! apiserver/pkg/endpoints/request/requestinfo.go).

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource: bool,
    pub verb: String,
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub subresource: String,
    pub name: Option<String>,
    /// Path segments after the subresource (proxy paths).
    pub rest: Vec<String>,
}

fn decode(seg: &str) -> String {
    percent_encoding::percent_decode_str(seg)
        .decode_utf8_lossy()
        .into_owned()
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...`; `None` for non-resource paths.
pub fn parse(method: &http::Method, path: &str, watch_param: bool) -> Option<RequestInfo> {
    let parts: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect();
    let mut info = RequestInfo::default();
    let rest: &[String] = match parts.first().map(String::as_str) {
        Some("api") => {
            if parts.len() < 3 {
                return None;
            }
            info.version = parts[1].clone();
            &parts[2..]
        }
        Some("apis") => {
            if parts.len() < 4 {
                return None;
            }
            info.group = parts[1].clone();
            info.version = parts[2].clone();
            &parts[3..]
        }
        _ => return None,
    };
    info.is_resource = true;
    let mut cur: &[String] = rest;
    let mut legacy_watch = false;
    if cur.first().map(String::as_str) == Some("watch") {
        legacy_watch = true;
        cur = &cur[1..];
    }
    if cur.len() >= 2 && cur[0] == "namespaces" {
        info.namespace = Some(cur[1].clone());
        if cur.len() > 2 && !matches!(cur[2].as_str(), "status" | "finalize") {
            cur = &cur[2..];
        } else {
            // The namespace object itself (and its status/finalize).
            info.namespace = None;
            info.resource = "namespaces".into();
            info.name = Some(cur[1].clone());
            if cur.len() > 2 {
                info.subresource = cur[2].clone();
            }
            cur = &[];
        }
    }
    if !cur.is_empty() {
        info.resource = cur[0].clone();
        if cur.len() > 1 {
            info.name = Some(cur[1].clone());
        }
        if cur.len() > 2 {
            info.subresource = cur[2].clone();
        }
        if cur.len() > 3 {
            info.rest = cur[3..].to_vec();
        }
    }
    if info.resource.is_empty() {
        return None;
    }
    info.verb = match *method {
        http::Method::GET | http::Method::HEAD => {
            if legacy_watch || watch_param {
                "watch"
            } else if info.name.is_some() {
                "get"
            } else {
                "list"
            }
        }
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => {
            if info.name.is_some() {
                "delete"
            } else {
                "deletecollection"
            }
        }
        _ => "",
    }
    .to_string();
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn paths() {
        let i = parse(&Method::GET, "/api/v1/namespaces/default/pods/web", false).unwrap();
        assert_eq!(
            (
                i.verb.as_str(),
                i.namespace.as_deref(),
                i.resource.as_str(),
                i.name.as_deref()
            ),
            ("get", Some("default"), "pods", Some("web"))
        );
        let i = parse(&Method::PUT, "/api/v1/namespaces/foo/finalize", false).unwrap();
        assert_eq!(
            (
                i.resource.as_str(),
                i.name.as_deref(),
                i.subresource.as_str(),
                i.namespace.clone()
            ),
            ("namespaces", Some("foo"), "finalize", None)
        );
        let i = parse(&Method::GET, "/api/v1/namespaces/foo", false).unwrap();
        assert_eq!(
            (i.verb.as_str(), i.resource.as_str(), i.name.as_deref()),
            ("get", "namespaces", Some("foo"))
        );
        let i = parse(
            &Method::GET,
            "/apis/apps/v1/watch/namespaces/x/deployments",
            false,
        )
        .unwrap();
        assert_eq!(
            (i.verb.as_str(), i.group.as_str(), i.resource.as_str()),
            ("watch", "apps", "deployments")
        );
        let i = parse(&Method::DELETE, "/api/v1/namespaces/x/configmaps", false).unwrap();
        assert_eq!(i.verb, "deletecollection");
        let i = parse(&Method::POST, "/api/v1/namespaces/x/pods/p/binding", false).unwrap();
        assert_eq!(
            (i.verb.as_str(), i.subresource.as_str()),
            ("create", "binding")
        );
        assert!(parse(&Method::GET, "/apis/apps/v1", false).is_none());
        assert!(parse(&Method::GET, "/healthz", false).is_none());
    }
}
