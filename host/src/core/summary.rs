//! The support log's two lines per request, in the spirit of Pexip's support log:
//! `Summarised received SIP request` and `Summarised sending SIP response`.

use crate::config::Transport;
use crate::log_gate::LogGate;
use crate::sip::{HeaderName, Message, Reply};
use std::net::SocketAddr;

/// Whether a support line of `kind` about `src` is written (a few per window).
pub(super) fn about_source(
    gate: &LogGate,
    kind: &'static str,
    src: SocketAddr,
    now_ms: u64,
) -> bool {
    tracing::enabled!(target: "sipreg::support", tracing::Level::INFO)
        && gate.admit(kind, src.ip(), now_ms)
}

/// Whether the summary line `kind` of this request is written: per source and To, a few
/// per window (`log_gate.rs`); the gate is asked only when the line would be written.
fn let_through(
    gate: &LogGate,
    kind: &'static str,
    msg: &Message,
    src: SocketAddr,
    now_ms: u64,
) -> bool {
    use std::hash::BuildHasher;
    if !tracing::enabled!(target: "sipreg::support", tracing::Level::INFO) {
        return false;
    }
    let to = msg.header(HeaderName::To).unwrap_or("");
    let subject = foldhash::fast::FixedState::default().hash_one(to);
    gate.admit_about(kind, src.ip(), subject, now_ms)
}

fn contacts_of(msg: &Message) -> String {
    msg.headers_named(HeaderName::Contact)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn summarise_request(
    gate: &LogGate,
    msg: &Message,
    src: SocketAddr,
    transport: Transport,
    now_ms: u64,
) {
    const KIND: &str = "Summarised received SIP request";
    if !let_through(gate, KIND, msg, src, now_ms) {
        return;
    }
    tracing::info!(
        target: "sipreg::support",
        src_address = %src.ip(),
        src_port = src.port(),
        transport = transport.via_token(),
        method = %msg.method().map(ToString::to_string).unwrap_or_default(),
        request_uri = msg.request_uri().unwrap_or(""),
        from = msg.header(HeaderName::From).unwrap_or(""),
        to = msg.header(HeaderName::To).unwrap_or(""),
        contacts = %contacts_of(msg),
        call_id = msg.header(HeaderName::CallId).unwrap_or(""),
        cseq = msg.header(HeaderName::CSeq).unwrap_or(""),
        "{KIND}"
    );
}

pub(super) fn summarise_response(
    gate: &LogGate,
    msg: &Message,
    src: SocketAddr,
    transport: Transport,
    reply: &Reply,
    now_ms: u64,
) {
    const KIND: &str = "Summarised sending SIP response";
    if !let_through(gate, KIND, msg, src, now_ms) {
        return;
    }
    tracing::info!(
        target: "sipreg::support",
        dst_address = %src.ip(),
        dst_port = src.port(),
        transport = transport.via_token(),
        method = %msg.method().map(ToString::to_string).unwrap_or_default(),
        from = msg.header(HeaderName::From).unwrap_or(""),
        to = msg.header(HeaderName::To).unwrap_or(""),
        contacts = %reply.headers.iter().filter(|(n, _)| n == "Contact").map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(", "),
        call_id = msg.header(HeaderName::CallId).unwrap_or(""),
        cseq = msg.header(HeaderName::CSeq).unwrap_or(""),
        status_code = reply.code,
        reason = %reply.reason,
        "{KIND}"
    );
}
