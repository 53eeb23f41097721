//! exec/attach over WebSocket `v5.channel.k8s.io`, translated to SPDY `v4.channel.k8s.io`
//! towards the kubelet (upstream StreamTranslatorHandler). The WebSocket is accepted first;
//! from then on every outcome reaches the client as a metav1.Status on the error channel (3),
//! followed by a normal close:
//! - Success, or NonZeroExitCode with the exit code as an `ExitCode` cause;
//! - the kubelet's own Status when it refuses the upgrade with one;
//! - otherwise InternalError ("unable to upgrade connection: …", or the failure the container
//!   runtime reported).
//!
//! Channels: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; a `[255, n]` message is the v5
//! close signal for the client's channel `n` (stdin), passed on as FIN.

use super::spdy::{self, Event};
use super::{STREAM_PROTOCOL_V4, STREAM_PROTOCOL_V5, X_STREAM_PROTOCOL_VERSION};
use crate::kubelet_client::{KubeletClient, Location};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderValue};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const STREAM_CLOSE: u8 = 255;
/// How long the kubelet has to accept each stream (client-go's createStreamResponseTimeout).
const STREAM_REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of the error stream kept (it carries one Status).
const MAX_ERROR_BYTES: usize = 64 * 1024;

/// The streams the request asked for (the exec/attach options).
#[derive(Clone, Copy, Debug)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Accepts the WebSocket and, once upgraded, runs the translation in the background.
pub fn serve(
    kubelet: Arc<KubeletClient>,
    loc: Location,
    path_and_query: String,
    streams: Streams,
    mut req: Request,
) -> Response {
    let accept = match super::handshake(&req, "exec/attach") {
        Ok(a) => a,
        Err(refusal) => {
            super::count(&super::TRANSLATOR_REQUESTS, 400);
            return refusal;
        }
    };
    super::on_upgraded(&mut req, move |ws| async move {
        let code = translate(ws, &kubelet, &loc, &path_and_query, streams).await;
        super::count(&super::TRANSLATOR_REQUESTS, code);
    });
    super::switching_protocols(&accept, Some(STREAM_PROTOCOL_V5))
}

/// metav1.Status as the error channel carries it (no kind/apiVersion, as upstream marshals
/// `StatusError.Status()`).
fn internal_error(msg: &str) -> Value {
    json!({"metadata": {}, "status": "Failure",
        "message": format!("Internal error occurred: {msg}"), "reason": "InternalError",
        "details": {"causes": [{"message": msg}]}, "code": 500})
}

fn success() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

/// client-go's errorDecoderV4 on what the kubelet wrote to the error stream, then the Status
/// the translator reports for it.
fn decode_error_stream(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return success();
    }
    let status: Value = match serde_json::from_slice(raw) {
        Ok(v) => v,
        Err(e) => {
            return internal_error(&format!(
                "error stream protocol error: {e} in {:?}",
                String::from_utf8_lossy(raw)
            ));
        }
    };
    match status.get("status").and_then(Value::as_str) {
        Some("Success") => success(),
        Some("Failure") => {
            if status.get("reason").and_then(Value::as_str) != Some("NonZeroExitCode") {
                let msg = status.get("message").and_then(Value::as_str).unwrap_or("");
                return internal_error(msg);
            }
            let Some(details) = status.get("details").filter(|d| !d.is_null()) else {
                return internal_error("error stream protocol error: details must be set");
            };
            let causes = details
                .get("causes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for cause in causes {
                if cause.get("reason").and_then(Value::as_str) != Some("ExitCode") {
                    continue;
                }
                let msg = cause.get("message").and_then(Value::as_str).unwrap_or("");
                return match msg.parse::<u8>() {
                    Ok(rc) => json!({"metadata": {}, "status": "Failure",
                        "message": format!("command terminated with non-zero exit code: command terminated with exit code {rc}"),
                        "reason": "NonZeroExitCode",
                        "details": {"causes": [{"reason": "ExitCode", "message": rc.to_string()}]}}),
                    Err(e) => internal_error(&format!(
                        "error stream protocol error: invalid exit code value {msg:?}: {e}"
                    )),
                };
            }
            internal_error(&format!(
                "error stream protocol error: no exit code in details: {details}"
            ))
        }
        _ => internal_error("error stream protocol error: unknown error"),
    }
}

/// The HTTP status counted for a final Status (upstream's metric labels).
fn metric_code(status: &Value) -> u16 {
    match status.get("reason").and_then(Value::as_str) {
        None | Some("NonZeroExitCode") => 200,
        _ => status
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500),
    }
}

/// How the SPDY upgrade towards the kubelet failed, as a Status.
async fn upgrade_failure(resp: http::Response<hyper::body::Incoming>) -> Value {
    let body = match tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect()).await
    {
        Ok(Ok(b)) => b.to_bytes(),
        _ => {
            return internal_error(
                "unable to upgrade connection: unable to read error from server response",
            );
        }
    };
    if let Ok(v) = serde_json::from_slice::<Value>(&body)
        && v.get("kind").and_then(Value::as_str) == Some("Status")
    {
        return v;
    }
    let text = String::from_utf8_lossy(&body);
    internal_error(&format!("unable to upgrade connection: {}", text.trim()))
}

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// Opens the SPDY connection to the kubelet, or says why not.
async fn connect(
    kubelet: &KubeletClient,
    loc: &Location,
    path_and_query: &str,
) -> Result<Upgraded, Value> {
    let mut kreq = http::Request::builder()
        .method(http::Method::POST)
        .uri(path_and_query)
        .body(Body::empty())
        .map_err(|e| internal_error(&e.to_string()))?;
    let h = kreq.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&loc.authority()) {
        h.insert(header::HOST, v);
    }
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        X_STREAM_PROTOCOL_VERSION,
        HeaderValue::from_static(STREAM_PROTOCOL_V4),
    );
    let mut resp = kubelet
        .send(loc, false, kreq)
        .await
        .map_err(|e| internal_error(&format!("error dialing backend: {}", e.0)))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(upgrade_failure(resp).await);
    }
    let negotiated = resp
        .headers()
        .get(X_STREAM_PROTOCOL_VERSION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if negotiated != STREAM_PROTOCOL_V4 {
        return Err(internal_error(&format!(
            "unsupported streaming protocol {negotiated:?} from the kubelet, {STREAM_PROTOCOL_V4:?} was asked for"
        )));
    }
    hyper::upgrade::on(&mut resp)
        .await
        .map(TokioIo::new)
        .map_err(|e| internal_error(&format!("unable to upgrade connection: {e}")))
}

/// The kubelet's side: the streams of one exec/attach and what is known of them.
struct Session<W> {
    writer: spdy::Writer<W>,
    events: mpsc::Receiver<Event>,
    refusals: mpsc::UnboundedReceiver<u32>,
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

/// Creates the streams in client-go's order (error, stdin, stdout, stderr, resize) and waits
/// for the kubelet to accept each.
async fn open_streams<R, W>(io_read: R, io_write: W, streams: Streams) -> Result<Session<W>, Value>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    let (tx, mut events) = mpsc::channel(64);
    let (rtx, refusals) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        if let Err(e) = spdy::read_frames(io_read, tx, rtx).await {
            tracing::debug!(error = %e, "SPDY connection to the kubelet ended");
        }
    });
    let mut writer = spdy::Writer::new(io_write);
    let io_err = |e: std::io::Error| internal_error(&e.to_string());
    let kinds = [
        ("error", true),
        ("stdin", streams.stdin),
        ("stdout", streams.stdout),
        ("stderr", streams.stderr && !streams.tty),
        ("resize", streams.tty),
    ];
    let mut ids = [None; 5];
    for (i, (kind, wanted)) in kinds.into_iter().enumerate() {
        if wanted {
            ids[i] = Some(
                writer
                    .open(&[("streamtype", kind)], false)
                    .await
                    .map_err(io_err)?,
            );
        }
    }
    let [error, stdin, stdout, stderr, resize] = ids;
    let error = error.unwrap_or(1);
    let mut pending: Vec<u32> = [Some(error), stdin, stdout, stderr, resize]
        .into_iter()
        .flatten()
        .collect();
    let deadline = tokio::time::Instant::now() + STREAM_REPLY_TIMEOUT;
    while !pending.is_empty() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return Err(internal_error("timeout waiting for SPDY stream reply")),
            Ok(None) => {
                return Err(internal_error(
                    "connection closed before the streams were created",
                ));
            }
            Ok(Some(Event::Reply(id))) => pending.retain(|p| *p != id),
            Ok(Some(Event::Reset(..))) => return Err(internal_error("stream reset")),
            Ok(Some(Event::Ping(p))) => writer.pong(p).await.map_err(io_err)?,
            Ok(Some(_)) => {}
        }
    }
    Ok(Session {
        writer,
        events,
        refusals,
        error,
        stdin,
        stdout,
        stderr,
        resize,
    })
}

async fn send_status<S>(ws: &mut WebSocketStream<S>, status: &Value)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut msg = vec![ERROR];
    msg.extend(serde_json::to_vec(status).unwrap_or_default());
    let _ = ws.send(Message::Binary(msg.into())).await;
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
}

/// Runs one translated exec/attach; returns the status code counted for it.
async fn translate<S>(
    mut ws: WebSocketStream<S>,
    kubelet: &KubeletClient,
    loc: &Location,
    path_and_query: &str,
    streams: Streams,
) -> u16
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = match connect(kubelet, loc, path_and_query).await {
        Ok(io) => io,
        Err(status) => {
            tracing::debug!(%status, "exec/attach: the kubelet refused the SPDY upgrade");
            send_status(&mut ws, &status).await;
            return metric_code(&status);
        }
    };
    let (r, w) = tokio::io::split(io);
    let mut s = match open_streams(r, w, streams).await {
        Ok(s) => s,
        Err(status) => {
            send_status(&mut ws, &status).await;
            return metric_code(&status);
        }
    };
    let status = pump(&mut ws, &mut s).await;
    let _ = s.writer.close().await;
    match status {
        Some(status) => {
            send_status(&mut ws, &status).await;
            metric_code(&status)
        }
        // The client went away first.
        None => 200,
    }
}

/// Moves data both ways until the kubelet has finished every stream it writes (or the
/// connection ends): returns the Status to report, or None when the client left first.
async fn pump<S, W>(ws: &mut WebSocketStream<S>, s: &mut Session<W>) -> Option<Value>
where
    S: AsyncRead + AsyncWrite + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut open_outputs: Vec<u32> = [Some(s.error), s.stdout, s.stderr]
        .into_iter()
        .flatten()
        .collect();
    let mut error_bytes: Vec<u8> = Vec::new();
    let mut stdin_open = s.stdin.is_some();
    while !open_outputs.is_empty() {
        tokio::select! {
            msg = ws.next() => {
                let data: Bytes = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Ok(Message::Text(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                };
                let Some((&channel, payload)) = data.split_first() else { continue };
                let result = match channel {
                    STDIN if stdin_open => match s.stdin {
                        Some(id) => s.writer.data(id, payload, false).await,
                        None => Ok(()),
                    },
                    RESIZE => match s.resize {
                        Some(id) => s.writer.data(id, payload, false).await,
                        None => Ok(()),
                    },
                    STREAM_CLOSE if payload.first() == Some(&STDIN) && stdin_open => {
                        stdin_open = false;
                        match s.stdin {
                            Some(id) => s.writer.data(id, &[], true).await,
                            None => Ok(()),
                        }
                    }
                    _ => Ok(()),
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "writing to the kubelet");
                    break;
                }
            }
            ev = s.events.recv() => match ev {
                None => break,
                Some(Event::Data(id, data)) => {
                    let channel = if Some(id) == s.stdout {
                        STDOUT
                    } else if Some(id) == s.stderr {
                        STDERR
                    } else {
                        if id == s.error && error_bytes.len() < MAX_ERROR_BYTES {
                            error_bytes.extend_from_slice(&data);
                        }
                        continue;
                    };
                    let mut msg = Vec::with_capacity(1 + data.len());
                    msg.push(channel);
                    msg.extend_from_slice(&data);
                    if ws.send(Message::Binary(msg.into())).await.is_err() {
                        return None;
                    }
                }
                Some(Event::Fin(id) | Event::Reset(id, _)) => open_outputs.retain(|o| *o != id),
                Some(Event::Ping(p)) => {
                    let _ = s.writer.pong(p).await;
                }
                Some(Event::Reply(_) | Event::GoAway) => {}
            },
            Some(id) = s.refusals.recv() => {
                let _ = s.writer.refuse(id).await;
            }
        }
    }
    Some(decode_error_stream(&error_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stream_statuses() {
        assert_eq!(decode_error_stream(b""), success());
        assert_eq!(
            decode_error_stream(br#"{"metadata":{},"status":"Success"}"#),
            success()
        );
        let exit = decode_error_stream(
            br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#,
        );
        assert_eq!(exit["reason"], "NonZeroExitCode");
        assert_eq!(
            exit["message"],
            "command terminated with non-zero exit code: command terminated with exit code 3"
        );
        assert_eq!(exit["details"]["causes"][0]["message"], "3");
        assert_eq!(metric_code(&exit), 200);
        let failed = decode_error_stream(
            br#"{"metadata":{},"status":"Failure","message":"failed to exec in container: no such file"}"#,
        );
        assert_eq!(failed["reason"], "InternalError");
        assert_eq!(
            failed["message"],
            "Internal error occurred: failed to exec in container: no such file"
        );
        assert_eq!(metric_code(&failed), 500);
        assert_eq!(decode_error_stream(b"not json")["reason"], "InternalError");
        let no_details = decode_error_stream(
            br#"{"metadata":{},"status":"Failure","reason":"NonZeroExitCode"}"#,
        );
        assert_eq!(
            no_details["details"]["causes"][0]["message"],
            "error stream protocol error: details must be set"
        );
        let bad_code = decode_error_stream(
            br#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"300"}]}}"#,
        );
        assert_eq!(bad_code["reason"], "InternalError");
    }
}
