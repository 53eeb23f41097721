//! A streamed response (pods/log) served over a WebSocket, as upstream's StreamObject does with
//! wsstream.Reader: subprotocol `binary.k8s.io` (or none) sends each chunk as a binary message,
//! `base64.binary.k8s.io` as base64 text; an empty first message opens the stream, and the
//! connection is closed normally when the stream ends.

use axum::extract::Request;
use axum::response::Response;
use base64::Engine;
use futures::{SinkExt, StreamExt};
use http::StatusCode;
use http_body_util::BodyExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const BINARY: &str = "binary.k8s.io";
const BASE64_BINARY: &str = "base64.binary.k8s.io";

/// Upgrades `req` and streams `body` to it; refuses clients offering only subprotocols it
/// does not know.
pub fn serve<B>(mut req: Request, body: B) -> Response
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin + 'static,
    B::Error: std::fmt::Display + Send,
{
    let accept = match super::handshake(&req, "log stream") {
        Ok(a) => a,
        Err(refusal) => return refusal,
    };
    let offered = super::subprotocols(req.headers());
    let chosen = if offered.is_empty() {
        None
    } else {
        match offered.iter().find(|p| *p == BINARY || *p == BASE64_BINARY) {
            Some(p) => Some(p.clone()),
            None => {
                return super::plain(
                    StatusCode::FORBIDDEN,
                    StatusCode::FORBIDDEN.canonical_reason().unwrap_or(""),
                );
            }
        }
    };
    let base64 = chosen.as_deref() == Some(BASE64_BINARY);
    super::on_upgraded(&mut req, move |ws| copy(ws, body, base64));
    super::switching_protocols(&accept, chosen.as_deref())
}

fn message(data: &[u8], base64: bool) -> Message {
    if base64 {
        Message::Text(
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .into(),
        )
    } else {
        Message::Binary(data.to_vec().into())
    }
}

async fn copy<S, B>(mut ws: WebSocketStream<S>, mut body: B, base64: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if ws.send(message(&[], base64)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(f)) => {
                    if let Ok(data) = f.into_data()
                        && !data.is_empty()
                        && ws.send(message(&data, base64)).await.is_err()
                    {
                        return;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "log stream ended with an error");
                    break;
                }
                None => break,
            },
            // The client sends nothing; a close or a broken connection ends the stream.
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = ws
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }))
        .await;
}
