//! What a connection goes through before SIP: the TLS handshake (TLS, WSS) and the
//! WebSocket upgrade (WS, WSS: RFC 7118 section 4, the `sip` subprotocol required, the
//! `Origin` allow-list), each within its deadline. A connection that fails either is
//! closed, counted and logged at debug (a flood of them must not flood the log).

use super::{Limits, Peer, Secure, Sender};
use crate::tls::PeerCert;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// The TLS handshake of an accepted connection, and the client's certificate if it
/// showed one (verified: the handshake fails otherwise). `None`: closed.
pub(super) async fn tls(
    stream: TcpStream,
    peer: &Peer,
    secure: &Secure,
    sender: &Sender,
) -> Option<(TlsStream<TcpStream>, Option<Arc<PeerCert>>)> {
    let server = secure.server.as_ref()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(server.current());
    let failed = |why: &dyn std::fmt::Display| {
        sender
            .core()
            .counters
            .tls_handshakes_failed
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(target: "sipreg::server", peer = %peer.addr, transport = peer.transport.via_token(), error = %why, "TLS handshake failed");
    };
    match tokio::time::timeout(secure.handshake_timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(PeerCert::of)
                .map(Arc::new);
            Some((tls, cert))
        }
        Ok(Err(e)) => {
            failed(&e);
            None
        }
        Err(_) => {
            failed(&"not complete within tls.handshake_timeout");
            None
        }
    }
}

/// The WebSocket upgrade (RFC 6455 over HTTP/1.1, RFC 7118's `sip` subprotocol).
/// `None`: refused (with an HTTP error answer where the request was readable) or failed.
// The check's error type is tungstenite's `Callback` contract.
#[allow(clippy::result_large_err)]
pub(super) async fn websocket<S>(
    stream: S,
    peer: &Peer,
    secure: &Secure,
    sender: &Sender,
    limits: Limits,
) -> Option<WebSocketStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = ws_config(limits.max_message_size);
    let origins = &secure.origins;
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        upgrade_allowed(req, origins)?;
        resp.headers_mut().insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("sip"),
        );
        Ok(resp)
    };
    let upgrade = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config));
    match tokio::time::timeout(secure.upgrade_timeout, upgrade).await {
        Ok(Ok(ws)) => Some(ws),
        outcome => {
            sender
                .core()
                .counters
                .ws_upgrades_failed
                .fetch_add(1, Ordering::Relaxed);
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => "not complete within websocket.upgrade_timeout".to_owned(),
            };
            tracing::debug!(target: "sipreg::server", peer = %peer.addr, transport = peer.transport.via_token(), error = %why, "WebSocket upgrade refused");
            None
        }
    }
}

/// The limits of a WebSocket connection: `max` bytes per frame and per message, and
/// unmasked client frames refused (RFC 6455 section 5.1). Buffers of 4 KiB (tungstenite's
/// default of 128 KiB per connection would make an idle browser cost 150 KB here; a SIP
/// message is mostly under 2 KB) and each message written at once.
pub fn ws_config(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .accept_unmasked_frames(false)
}

/// Whether an upgrade request may become a SIP WebSocket: it offers the `sip`
/// subprotocol (RFC 7118 section 4.1: 400 otherwise) and, when `origins` lists any, comes
/// from one of them if it names an `Origin` (403 otherwise).
///
/// # Errors
/// The HTTP answer that refuses it.
// The error type is tungstenite's `Callback` contract.
#[allow(clippy::result_large_err)]
pub fn upgrade_allowed(req: &Request, origins: &[String]) -> Result<(), ErrorResponse> {
    let offered = req
        .headers()
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("sip"));
    if !offered {
        return Err(refusal(
            http::StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol \"sip\" is required (RFC 7118)",
        ));
    }
    if let Some(origin) = req.headers().get(http::header::ORIGIN)
        && !origins.is_empty()
        && !origins
            .iter()
            .any(|o| origin.to_str().is_ok_and(|v| v.eq_ignore_ascii_case(o)))
    {
        return Err(refusal(
            http::StatusCode::FORBIDDEN,
            "this Origin is not in websocket.origins",
        ));
    }
    Ok(())
}

fn refusal(status: http::StatusCode, why: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(format!("{why}\n")));
    *r.status_mut() = status;
    r
}
