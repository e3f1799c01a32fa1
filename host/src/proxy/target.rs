//! Where a forwarded message goes: a transport and an address, from a URI (RFC 3263 in
//! its simplest form: `maddr`, then the host as an IP address or a name the system
//! resolver knows, `transport` parameter, port 5060) or from a device's flow.

use crate::config::Transport;
use crate::sip::uri::{Scheme, SipUri};
use std::net::{SocketAddr, ToSocketAddrs};

/// Where to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination {
    pub transport: Transport,
    pub addr: SocketAddr,
    /// Only over a connection that is open already (a device's flow), never a new one.
    pub existing_only: bool,
}

/// Where a URI points.
///
/// # Errors
/// A reason phrase for the 4xx/5xx: a transport we do not speak, a name that does not
/// resolve.
pub fn of_uri(uri: &SipUri<'_>) -> Result<Destination, &'static str> {
    if uri.scheme == Scheme::Sips {
        return Err("SIPS is not supported");
    }
    let transport = match uri.param("transport").flatten() {
        None => Transport::Udp,
        Some(t) if t.eq_ignore_ascii_case("udp") => Transport::Udp,
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        Some(_) => return Err("Unsupported transport"),
    };
    let host = uri.param("maddr").flatten().unwrap_or(uri.host);
    let port = uri.port.unwrap_or(5060);
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
        existing_only: false,
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
        assert_eq!(dest("sips:bob@192.0.2.1"), Err("SIPS is not supported"));
        assert_eq!(
            dest("sip:bob@localhost:5999").unwrap().addr.port(),
            5999,
            "a name the system resolver knows"
        );
    }
}
