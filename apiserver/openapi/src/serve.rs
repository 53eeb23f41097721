//! HTTP semantics of the OpenAPI endpoints, independent of any HTTP library: content
//! negotiation, ETags, `If-None-Match`, and the `hash` redirect/immutable caching of the v3
//! group-version documents. Mirrors `kube-openapi/pkg/handler/handler.go` (v2) and
//! `kube-openapi/pkg/handler3/handler.go` (v3).

use bytes::Bytes;

use crate::{OpenApiDocuments, Served};

const JSON: &str = "application/json";
/// What client-go asks for (`Accept`), and the type upstream answers with.
const PROTO_V2_DEPRECATED: &str = "com.github.proto-openapi.spec.v2@v1.0+protobuf";
const PROTO_V2: &str = "com.github.proto-openapi.spec.v2.v1.0+protobuf";
const PROTO_V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The parts of a request the OpenAPI endpoints look at.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenApiRequest<'a> {
    /// URL path: `/openapi/v2`, `/openapi/v3`, `/openapi/v3/apis/apps/v1`.
    pub path: &'a str,
    /// The `hash` query parameter, if any.
    pub hash: Option<&'a str>,
    /// The `Accept` header, if any.
    pub accept: Option<&'a str>,
    /// The `If-None-Match` header, if any.
    pub if_none_match: Option<&'a str>,
}

/// What to answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenApiResponse {
    /// 200 with `body`. Headers: `Content-Type: content_type`, `ETag: "<etag>"` (quoted),
    /// `Vary: Accept`; when `immutable`, also `Cache-Control: public, immutable,
    /// max-age=31536000` (the URL carries the content hash).
    Ok {
        body: Bytes,
        content_type: &'static str,
        etag: String,
        immutable: bool,
    },
    /// 304 Not Modified, with the same `ETag` header.
    NotModified { etag: String },
    /// 301 Moved Permanently to `location` (a stale `hash`; upstream redirects to the current one).
    MovedPermanently { location: String },
    /// 406: none of the accepted types can be served.
    NotAcceptable,
    /// 404: no such document.
    NotFound,
}

impl OpenApiResponse {
    /// HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            OpenApiResponse::Ok { .. } => 200,
            OpenApiResponse::NotModified { .. } => 304,
            OpenApiResponse::MovedPermanently { .. } => 301,
            OpenApiResponse::NotAcceptable => 406,
            OpenApiResponse::NotFound => 404,
        }
    }

    /// Response headers (name, value) to set besides the body.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            OpenApiResponse::Ok {
                content_type,
                etag,
                immutable,
                ..
            } => {
                let mut h = vec![
                    ("Content-Type", content_type.to_string()),
                    ("ETag", format!("\"{etag}\"")),
                    ("Vary", "Accept".to_string()),
                ];
                if *immutable {
                    h.push((
                        "Cache-Control",
                        "public, immutable, max-age=31536000".to_string(),
                    ));
                }
                h
            }
            OpenApiResponse::NotModified { etag } => {
                vec![("ETag", format!("\"{etag}\"")), ("Vary", "Accept".into())]
            }
            OpenApiResponse::MovedPermanently { location } => {
                vec![("Location", location.clone())]
            }
            OpenApiResponse::NotAcceptable | OpenApiResponse::NotFound => Vec::new(),
        }
    }
}

/// One media range of an `Accept` header.
struct Range<'a> {
    ty: &'a str,
    subtype: &'a str,
    q: f32,
}

/// Parses `Accept` into media ranges, best first (stable for equal weights); q=0 ranges are
/// dropped. A missing or empty header accepts anything.
fn parse_accept(accept: Option<&str>) -> Vec<Range<'_>> {
    let accept = accept
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .unwrap_or("*/*");
    let mut ranges: Vec<Range> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim();
            let (ty, subtype) = media.split_once('/').unwrap_or((media, "*"));
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some(Range {
                ty: ty.trim(),
                subtype: subtype.trim(),
                q,
            })
        })
        .collect();
    ranges.sort_by(|a, b| b.q.total_cmp(&a.q));
    ranges
}

/// The first offer (`application/<subtype>`) the ranges accept, best range first.
fn negotiate<T: Copy>(accept: Option<&str>, offers: &[(&str, T)]) -> Option<T> {
    for r in parse_accept(accept) {
        for (subtype, value) in offers {
            let ty_ok = r.ty == "*" || r.ty.eq_ignore_ascii_case("application");
            let sub_ok = r.subtype == "*" || r.subtype.eq_ignore_ascii_case(subtype);
            if ty_ok && sub_ok {
                return Some(*value);
            }
        }
    }
    None
}

fn matches_etag(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|h| {
        h.split(',').any(|t| {
            let t = t.trim().trim_start_matches("W/");
            t == "*" || t.trim_matches('"') == etag
        })
    })
}

fn respond(
    served: &Served,
    content_type: &'static str,
    immutable: bool,
    req: &OpenApiRequest,
) -> OpenApiResponse {
    if matches_etag(req.if_none_match, &served.etag) {
        return OpenApiResponse::NotModified {
            etag: served.etag.clone(),
        };
    }
    OpenApiResponse::Ok {
        body: served.body.clone(),
        content_type,
        etag: served.etag.clone(),
        immutable,
    }
}

impl OpenApiDocuments {
    /// Answers a GET of `/openapi/v2`, `/openapi/v3` or `/openapi/v3/<group-version>`.
    pub fn serve(&self, req: &OpenApiRequest) -> OpenApiResponse {
        let path = req.path.trim_end_matches('/');
        if path == "/openapi/v2" {
            #[derive(Clone, Copy)]
            enum F {
                Json,
                Proto,
            }
            let offers = [
                ("json", F::Json),
                (PROTO_V2_DEPRECATED, F::Proto),
                (PROTO_V2, F::Proto),
            ];
            return match negotiate(req.accept, &offers) {
                Some(F::Json) => respond(&self.v2_docs().json, JSON, false, req),
                Some(F::Proto) => respond(&self.v2_docs().proto, PROTO_V2_CONTENT_TYPE, false, req),
                None => OpenApiResponse::NotAcceptable,
            };
        }
        if path == "/openapi/v3" {
            // Upstream serves the index as JSON whatever the Accept header says.
            return respond(&self.v3_docs().index, JSON, false, req);
        }
        let Some(gv) = path.strip_prefix("/openapi/v3/") else {
            return OpenApiResponse::NotFound;
        };
        let Some(served) = self.v3_docs().docs.get(gv) else {
            return OpenApiResponse::NotFound;
        };
        // Only JSON is served for v3 (kubectl and client-go's openapi3 ask for JSON).
        if negotiate(req.accept, &[("json", ())]).is_none() {
            return OpenApiResponse::NotAcceptable;
        }
        match req.hash.filter(|h| !h.is_empty()) {
            Some(h) if h != served.etag => OpenApiResponse::MovedPermanently {
                location: format!("/openapi/v3/{gv}?hash={}", served.etag),
            },
            Some(_) => respond(served, JSON, true, req),
            None => respond(served, JSON, false, req),
        }
    }
}
