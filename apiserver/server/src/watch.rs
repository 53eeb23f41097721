//! Watch streaming (mirrors apiserver/pkg/endpoints/handlers/watch.go): newline-delimited JSON
//! events or length-prefixed protobuf frames, Table events for `kubectl get -w`, periodic
//! bookmarks, the initial-events-end bookmark, and the watch timeout.

use crate::handlers::{Query, table_json};
use crate::negotiate::{Format, IncludeObject, Output};
use apiserver_apimachinery::{ApiError, Reason};
use apiserver_registry::context::{ListOptions, RequestContext};
use apiserver_registry::rest::{EventConvert, Rest};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::HeaderValue;
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);
/// Upstream's --min-request-timeout: watches last between this and twice this when unspecified.
const MIN_REQUEST_TIMEOUT: u64 = 1800;

struct Encoder {
    rest: Arc<dyn Rest>,
    out: Output,
    include: IncludeObject,
    convert: Option<EventConvert>,
}

impl Encoder {
    /// The frame of an event, its object converted to the served version first.
    async fn event(&self, ty: &str, object: &Bytes) -> Result<Bytes, ApiError> {
        match &self.convert {
            Some(c) => self.frame(ty, &c(object.clone()).await?),
            None => self.frame(ty, object),
        }
    }

    fn frame(&self, ty: &str, object: &[u8]) -> Result<Bytes, ApiError> {
        let obj: Value =
            serde_json::from_slice(object).map_err(|e| ApiError::internal(e.to_string()))?;
        let obj = match self.out {
            Output::Table { v1beta1 } if ty != "BOOKMARK" && ty != "ERROR" => {
                let meta = json!({"resourceVersion": obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::from(""))});
                table_json(
                    self.rest.as_ref(),
                    &[Bytes::copy_from_slice(object)],
                    meta,
                    self.include,
                    v1beta1,
                )?
            }
            Output::PartialMetadata { .. } if ty != "ERROR" => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
            }
            _ => obj,
        };
        match self.out.format() {
            Format::Protobuf => apiserver_protobuf::encode_watch_event(ty, &obj)
                .map(Bytes::from)
                .map_err(|e| ApiError::internal(format!("encoding watch event: {e}"))),
            _ => {
                let mut v = serde_json::to_vec(&json!({"type": ty, "object": obj}))
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                v.push(b'\n');
                Ok(Bytes::from(v))
            }
        }
    }

    fn bookmark(&self, rv: i64, initial_end: bool) -> Result<Bytes, ApiError> {
        let (api_version, kind) = self.rest.body_kind();
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": kind, "apiVersion": api_version, "metadata": meta});
        let bytes = serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?;
        self.frame("BOOKMARK", &bytes)
    }

    fn error(&self, e: &ApiError) -> Result<Bytes, ApiError> {
        let mut v =
            serde_json::to_value(e.to_status()).map_err(|e| ApiError::internal(e.to_string()))?;
        v["kind"] = Value::from("Status");
        v["apiVersion"] = Value::from("v1");
        self.frame(
            "ERROR",
            &serde_json::to_vec(&v).map_err(|e| ApiError::internal(e.to_string()))?,
        )
    }
}

fn stream_response(out: Output, rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(stream));
    let ct = match out.format() {
        Format::Protobuf => "application/vnd.kubernetes.protobuf;stream=watch",
        _ => "application/json;stream=watch",
    };
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

pub async fn serve(
    rest: Arc<dyn Rest>,
    ctx: &RequestContext,
    opts: ListOptions,
    out: Output,
    q: Query,
) -> Result<Response, ApiError> {
    let include = match q.get("includeObject").map(String::as_str) {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    };
    let mut enc = Encoder {
        rest: rest.clone(),
        out,
        include,
        convert: None,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let w = match rest.watch(ctx, &opts).await {
        Ok(w) => w,
        Err(e) if e.reason == Reason::Expired || e.reason == Reason::Gone => {
            // A watch from a compacted revision is answered with an ERROR event, as upstream.
            let frame = enc.error(&e)?;
            let _ = tx.try_send(frame);
            drop(tx);
            return Ok(stream_response(out, rx));
        }
        Err(e) => return Err(e),
    };
    enc.convert = w.convert.clone();
    let timeout =
        Duration::from_secs(opts.timeout_seconds.unwrap_or_else(|| {
            MIN_REQUEST_TIMEOUT + rand::rng().random_range(0..MIN_REQUEST_TIMEOUT)
        }));
    let bookmarks = opts.allow_bookmarks;
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_rv = w.revision;
        for ev in &w.initial {
            last_rv = last_rv.max(ev.object.revision);
            let Ok(f) = enc.event(ev.kind.as_str(), &ev.object.json).await else {
                return;
            };
            if tx.send(f).await.is_err() {
                return;
            }
        }
        if w.initial_events_end {
            let Ok(f) = enc.bookmark(w.revision.max(last_rv), true) else {
                return;
            };
            if tx.send(f).await.is_err() {
                return;
            }
        }
        let mut live = w.live;
        let mut tick = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        loop {
            tokio::select! {
                ev = live.recv() => {
                    let Some(ev) = ev else { return };
                    last_rv = ev.object.revision;
                    let frame = match enc.event(ev.kind.as_str(), &ev.object.json).await {
                        Ok(f) => f,
                        Err(e) => {
                            let _ = enc.error(&e).map(|f| tx.try_send(f));
                            return;
                        }
                    };
                    if tx.send(frame).await.is_err() {
                        return;
                    }
                }
                _ = tick.tick(), if bookmarks => {
                    // Everything up to the cache's revision must be sent before a bookmark
                    // claims it: read the revision, then drain what is already queued.
                    let cache_rv = w.cache.revision();
                    while let Ok(ev) = live.try_recv() {
                        last_rv = ev.object.revision;
                        let Ok(f) = enc.event(ev.kind.as_str(), &ev.object.json).await else { return };
                        if tx.send(f).await.is_err() {
                            return;
                        }
                    }
                    let rv = cache_rv.max(last_rv);
                    let Ok(f) = enc.bookmark(rv, false) else { return };
                    if tx.send(f).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(stream_response(out, rx))
}
