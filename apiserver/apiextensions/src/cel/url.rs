//! The Kubernetes URL CEL library (mirrors apiserver pkg/cel/library/urls.go): `url()`,
//! `isURL()`, `getScheme()`, `getHost()`, `getHostname()`, `getPort()`, `getEscapedPath()`,
//! `getQuery()`. URLs follow Go's `url.ParseRequestURI` closely enough for validation rules
//! (absolute URIs and absolute paths).

use crate::cel::net::{Function, Res, err, opaque, out, str_arg, string, with_opaque};
use cel::common::types::{STRING_TYPE, Type};
use cel::common::value::CowVal;
use cel::objects::{Key, Opaque};
use cel::{Env, Value};
use std::collections::HashMap;
use std::sync::Arc;

const URL_TYPE: &str = "kubernetes.URL";

/// A URL split as Go's `url.URL` (the parts the library exposes).
#[derive(Debug, PartialEq, Eq, Default)]
struct Url {
    raw: String,
    scheme: String,
    host: String,
    path: String,
    query: String,
}

impl Opaque for Url {
    fn runtime_type_name(&self) -> &str {
        URL_TYPE
    }
}

/// Registers the URL library.
pub fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    env.add_overload("url", "string_to_url", vec![STRING_TYPE], string_to_url)?;
    env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url)?;
    let getters: [(&str, &str, Function); 6] = [
        ("getScheme", "url_get_scheme", get_scheme),
        ("getHost", "url_get_host", get_host),
        ("getHostname", "url_get_hostname", get_hostname),
        ("getPort", "url_get_port", get_port),
        ("getEscapedPath", "url_get_escaped_path", get_escaped_path),
        ("getQuery", "url_get_query", get_query),
    ];
    for (name, id, f) in getters {
        env.add_member_overload(name, id, Type::new_opaque_type(URL_TYPE), vec![], f)?;
    }
    Ok(())
}

/// An overload reading a property of its URL receiver.
macro_rules! getter {
    ($name:ident, $body:expr) => {
        fn $name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
            let v = with_opaque::<Url, _>(&args, 0, $body)?;
            out(v)
        }
    };
}

getter!(get_scheme, |u| string(u.scheme.clone()));
getter!(get_host, |u| string(u.host.clone()));
getter!(get_hostname, |u| string(split_host(&u.host).0));
getter!(get_port, |u| string(split_host(&u.host).1));
getter!(get_escaped_path, |u| string(u.path.clone()));
getter!(get_query, |u| query_map(&u.query));

/// Percent-decodes `s` (`+` as a space in queries); `None` on a malformed escape.
fn unescape(s: &str, query: bool) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if query => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn valid_optional_port(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| p.bytes().all(|c| c.is_ascii_digit()))
}

/// Go's `parseHost`: brackets around IPv6 literals, a numeric port, no characters a host
/// cannot contain.
fn check_host(host: &str) -> Result<(), String> {
    let port = if host.starts_with('[') {
        let i = host.rfind(']').ok_or("missing ']' in host")?;
        &host[i + 1..]
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    if !valid_optional_port(port) {
        return Err(format!("invalid port {port:?} after host"));
    }
    let name = &host[..host.len() - port.len()];
    if let Some(c) = name.chars().find(|c| {
        c.is_ascii() && !c.is_ascii_alphanumeric() && !"!$&'()*+,;=:[]<>\"-_.~%".contains(*c)
    }) {
        return Err(format!(
            "invalid character {:?} in host name",
            c.to_string()
        ));
    }
    unescape(name, false).ok_or_else(|| "invalid URL escape".to_string())?;
    Ok(())
}

/// Go's `url.ParseRequestURI`: an absolute URI (`scheme:...`) or an absolute path.
fn parse_request_uri(raw: &str) -> Result<Url, String> {
    let wrap = |e: String| format!("parse {raw:?}: {e}");
    if raw.bytes().any(|c| c < 0x20 || c == 0x7f) {
        return Err(wrap("net/url: invalid control character in URL".into()));
    }
    if raw.is_empty() {
        return Err(wrap("empty url".into()));
    }
    let mut url = Url {
        raw: raw.to_string(),
        ..Url::default()
    };
    if raw == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let mut rest = raw;
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err(wrap("missing protocol scheme".into())),
            ':' => {
                url.scheme = raw[..i].to_ascii_lowercase();
                rest = &raw[i + 1..];
                break;
            }
            _ => break,
        }
    }
    if let Some((r, q)) = rest.split_once('?') {
        rest = r;
        url.query = q.to_string();
    }
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            return Ok(url);
        }
        return Err(wrap("invalid URI for request".into()));
    }
    if !url.scheme.is_empty()
        && let Some(after) = rest.strip_prefix("//")
    {
        let (authority, path) = after.split_at(after.find('/').unwrap_or(after.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        check_host(host).map_err(wrap)?;
        url.host = host.to_string();
        rest = path;
    }
    if unescape(rest, false).is_none() {
        return Err(wrap("invalid URL escape".into()));
    }
    url.path = rest.to_string();
    Ok(url)
}

fn string_to_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    let u = parse_request_uri(&str_arg(&args, 0)?).map_err(|e| {
        err(
            "url",
            format!("URL parse error during conversion from string: {e}"),
        )
    })?;
    opaque(u)
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Res<'b, 'v> {
    out(Value::Bool(parse_request_uri(&str_arg(&args, 0)?).is_ok()))
}

/// `Hostname()` and `Port()` of a `host[:port]`.
fn split_host(host: &str) -> (String, String) {
    if let Some(rest) = host.strip_prefix('[') {
        let (name, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (
            name.to_string(),
            after.strip_prefix(':').unwrap_or("").to_string(),
        );
    }
    match host.rsplit_once(':') {
        Some((name, port)) => (name.to_string(), port.to_string()),
        None => (host.to_string(), String::new()),
    }
}

/// `Query()`: keys to their values, malformed pairs left out.
fn query_map(raw: &str) -> Value {
    let mut map: HashMap<Key, Vec<Value>> = HashMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty() && !p.contains(';')) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(k), Some(v)) = (unescape(k, true), unescape(v, true)) {
            map.entry(Key::String(Arc::new(k)))
                .or_default()
                .push(string(v));
        }
    }
    let map: HashMap<Key, Value> = map
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    Value::Map(map.into())
}

#[cfg(test)]
mod tests {
    use crate::cel::library::{assert_true as t, test_eval as eval};

    #[test]
    fn url_library() {
        t(
            "isURL('https://example.com:80/path?x=1') && isURL('/absolute/path') && !isURL('example.com')",
        );
        t("!isURL('https://exa mple.com') && !isURL('http://x:port') && isURL('mailto:a@b')");
        t("url('https://user@example.com:8080/p%20q').getHost() == 'example.com:8080'");
        t(
            "url('https://example.com:8080/p').getHostname() == 'example.com' && url('https://example.com:8080/p').getPort() == '8080'",
        );
        t(
            "url('https://[::1]:80/').getHostname() == '::1' && url('HTTPS://x').getScheme() == 'https'",
        );
        t("url('https://x/a%20b').getEscapedPath() == '/a%20b'");
        t("url('https://x/?a=1&a=2&b=c+d').getQuery() == {'a': ['1', '2'], 'b': ['c d']}");
        assert!(
            eval("url('x')")
                .unwrap_err()
                .contains("invalid URI for request")
        );
    }
}
