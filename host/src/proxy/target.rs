//! Where a forwarded message goes: a transport and an address, from a URI (RFC 3263 in
//! its simplest form: `maddr`, then the host as an IP address or a name the system
//! resolver knows, `transport` parameter, the transport's port) or from a device's flow.
//! A `sips:` URI goes over TLS (or WSS), never over a clear transport (RFC 5630), and
//! names the server a TLS connection must verify (RFC 5922 section 4).

use crate::config::Transport;
use crate::sip::uri::{Scheme, SipUri};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Where to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// Only over a connection that is open already (a device's flow), never a new one.
    pub existing_only: bool,
    /// The domain a new TLS connection must find in the server's certificate (and asks
    /// for with SNI): the URI's host when it is a name; `None` for an IP address (then
    /// the address itself must be in the certificate) and for everything but TLS.
    pub name: Option<Arc<str>>,
}

impl Destination {
    /// A destination on a device's flow or a known address, without a name.
    pub fn at(transport: Transport, addr: SocketAddr, existing_only: bool) -> Destination {
        Destination {
            transport,
            addr,
            existing_only,
            name: None,
        }
    }
}

/// Where a URI points.
///
/// # Errors
/// A reason phrase for the 4xx/5xx: a transport we do not speak, a name that does not
/// resolve.
pub fn of_uri(uri: &SipUri<'_>) -> Result<Destination, &'static str> {
    let secure = uri.scheme == Scheme::Sips;
    let named = uri.param("transport").flatten().map(Transport::parse);
    let transport = match (secure, named) {
        (_, Some(None)) => return Err("Unsupported transport"),
        (false, None) => Transport::Udp,
        (false, Some(Some(t))) => t,
        // RFC 5630 section 4: sips means TLS; `transport=tcp` is TLS over TCP.
        (true, None | Some(Some(Transport::Tcp | Transport::Tls))) => Transport::Tls,
        (true, Some(Some(Transport::Ws | Transport::Wss))) => Transport::Wss,
        (true, Some(Some(Transport::Udp))) => {
            return Err("A sips: target is never sent over a clear transport");
        }
    };
    let host = uri.param("maddr").flatten().unwrap_or(uri.host);
    let port = uri.port.unwrap_or(transport.default_port());
    let name = (transport == Transport::Tls && crate::sip::via::host_ip(uri.host).is_none())
        .then(|| Arc::from(uri.host.to_ascii_lowercase()));
    let addr = match crate::sip::via::host_ip(host) {
        Some(ip) => SocketAddr::new(ip, port),
        None => (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or("Destination does not resolve")?,
    };
    Ok(Destination {
        transport,
        addr,
        // This server never opens a WebSocket: a WS/WSS target is a browser's flow.
        existing_only: matches!(transport, Transport::Ws | Transport::Wss),
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(text: &str) -> Result<Destination, &'static str> {
        of_uri(&SipUri::parse(text).unwrap())
    }

    #[test]
    fn uris() {
        let d = dest("sip:bob@192.0.2.1").unwrap();
        assert_eq!(
            (d.transport, d.addr),
            (Transport::Udp, "192.0.2.1:5060".parse().unwrap())
        );
        let d = dest("sip:bob@[::1]:5070;transport=TCP").unwrap();
        assert_eq!(
            (d.transport, d.addr),
            (Transport::Tcp, "[::1]:5070".parse().unwrap())
        );
        let d = dest("sip:bob@example.com;maddr=127.0.0.2").unwrap();
        assert_eq!(d.addr, "127.0.0.2:5060".parse().unwrap());
        assert_eq!(
            dest("sip:bob@192.0.2.1;transport=sctp"),
            Err("Unsupported transport")
        );
        let d = dest("sips:bob@192.0.2.1").unwrap();
        assert_eq!(
            (d.transport, d.addr, d.name),
            (Transport::Tls, "192.0.2.1:5061".parse().unwrap(), None)
        );
        let d = dest("sips:bob@LocalHost:5999;transport=tcp").unwrap();
        assert_eq!(
            (d.transport, d.name.as_deref()),
            (Transport::Tls, Some("localhost"))
        );
        let d = dest("sip:bob@[::1];transport=tls").unwrap();
        assert_eq!((d.transport, d.addr.port()), (Transport::Tls, 5061));
        let d = dest("sips:bob@192.0.2.1;transport=ws").unwrap();
        assert_eq!(
            (d.transport, d.addr.port(), d.existing_only),
            (Transport::Wss, 443, true)
        );
        assert_eq!(
            dest("sips:bob@192.0.2.1;transport=udp"),
            Err("A sips: target is never sent over a clear transport")
        );
        assert_eq!(
            dest("sip:bob@localhost:5999").unwrap().addr.port(),
            5999,
            "a name the system resolver knows"
        );
    }
}
