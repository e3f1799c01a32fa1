//! The support log's two lines per request, in the spirit of Pexip's support log:
//! `Summarised received SIP request` and `Summarised sending SIP response`.

use crate::config::Transport;
use crate::sip::{HeaderName, Message, Reply};
use std::net::SocketAddr;

fn contacts_of(msg: &Message) -> String {
    msg.headers_named(HeaderName::Contact)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn summarise_request(msg: &Message, src: SocketAddr, transport: Transport) {
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
        "Summarised received SIP request"
    );
}

pub(super) fn summarise_response(
    msg: &Message,
    src: SocketAddr,
    transport: Transport,
    reply: &Reply,
) {
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
        "Summarised sending SIP response"
    );
}
