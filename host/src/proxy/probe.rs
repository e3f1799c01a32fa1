//! The OPTIONS a qualify probe sends to a binding, the way a request to it would go
//! (through its Path, on its TCP connection, to its NAT source address).

use super::{Outgoing, Proxy};
use crate::store::Binding;

impl Proxy {
    /// An OPTIONS to `b` with this Call-ID; None when `b` cannot be reached now.
    pub fn probe(&self, b: &Binding, call_id: &str) -> Option<Outgoing> {
        let r = self.reach(b)?;
        let (host, port) = self.local_for(r.to.transport, r.to.addr);
        let route = if r.routes.is_empty() {
            String::new()
        } else {
            format!("Route: {}\r\n", r.routes.join(", "))
        };
        let text = format!(
            "OPTIONS {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK.sq{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             {route}\
             From: <sip:sipreg@{host}>;tag={tag}\r\n\
             To: <{uri}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Accept: application/sdp\r\n\
             Content-Length: 0\r\n\r\n",
            uri = r.request_uri,
            transport = r.to.transport.via_token(),
            branch = uuid::Uuid::new_v4().simple(),
            tag = &call_id[call_id.len().saturating_sub(8)..],
        );
        Some(Outgoing {
            to: r.to,
            bytes: text.into_bytes(),
        })
    }
}
