//! Flow tokens: a transport and a peer address, written into our Via (where the response
//! goes) and our Record-Route (where requests within the dialog go), signed so that a
//! forged response or Route cannot aim this server at an address of the sender's choice.
//!
//! Text form: `u` or `t` (UDP, TCP), the address in hex (8 digits for IPv4, 32 for IPv6),
//! the port in 4 hex digits, then 12 hex digits of HMAC-SHA256 over what stands before.
//! Every character is a token character, so it stands as a URI or Via parameter value.

use crate::config::Transport;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const MAC_HEX: usize = 12;

/// A transport and a peer: where a device's messages come from and where ours go back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub transport: Transport,
    pub peer: SocketAddr,
}

/// Writes and checks flow tokens with one key.
#[derive(Clone)]
pub struct FlowTokens {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for FlowTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlowTokens")
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
}

fn from_hex(text: &str, out: &mut [u8]) -> Option<()> {
    let t = text.as_bytes();
    if t.len() != out.len() * 2 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (t[2 * i] as char).to_digit(16)?;
        let lo = (t[2 * i + 1] as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(())
}

impl FlowTokens {
    /// Tokens signed with `key`.
    pub fn new(key: &[u8]) -> FlowTokens {
        FlowTokens {
            mac: Hmac::new_from_slice(key).expect("HMAC takes any key length"),
        }
    }

    fn tag(&self, body: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = String::with_capacity(MAC_HEX);
        push_hex(&mut out, &full[..MAC_HEX / 2]);
        out
    }

    /// The token of a flow.
    pub fn encode(&self, flow: Flow) -> String {
        let mut s = String::with_capacity(1 + 32 + 4 + MAC_HEX);
        s.push(match flow.transport {
            Transport::Udp => 'u',
            Transport::Tcp => 't',
            Transport::Tls => 's',
            Transport::Ws => 'w',
            Transport::Wss => 'x',
        });
        match flow.peer.ip() {
            IpAddr::V4(v4) => push_hex(&mut s, &v4.octets()),
            IpAddr::V6(v6) => push_hex(&mut s, &v6.octets()),
        }
        push_hex(&mut s, &flow.peer.port().to_be_bytes());
        let tag = self.tag(&s);
        s.push_str(&tag);
        s
    }

    /// The flow a token names, if the token is ours and intact.
    pub fn decode(&self, token: &str) -> Option<Flow> {
        if !token.is_ascii() || token.len() < 1 + 8 + 4 + MAC_HEX {
            return None;
        }
        let (body, tag) = token.split_at(token.len() - MAC_HEX);
        let expected = self.tag(body);
        let same: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), tag.as_bytes()).into();
        if !same {
            return None;
        }
        let transport = match &body[..1] {
            "u" => Transport::Udp,
            "t" => Transport::Tcp,
            "s" => Transport::Tls,
            "w" => Transport::Ws,
            "x" => Transport::Wss,
            _ => return None,
        };
        let (addr, port) = body[1..].split_at(body.len() - 1 - 4);
        let ip = match addr.len() {
            8 => {
                let mut b = [0u8; 4];
                from_hex(addr, &mut b)?;
                IpAddr::V4(Ipv4Addr::from(b))
            }
            32 => {
                let mut b = [0u8; 16];
                from_hex(addr, &mut b)?;
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return None,
        };
        let mut p = [0u8; 2];
        from_hex(port, &mut p)?;
        Some(Flow {
            transport,
            peer: SocketAddr::new(ip, u16::from_be_bytes(p)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_forgery() {
        let t = FlowTokens::new(b"key");
        for (transport, peer) in [
            (Transport::Udp, "192.0.2.7:5060"),
            (Transport::Tcp, "[2001:db8::1]:40000"),
            (Transport::Tls, "192.0.2.8:5061"),
            (Transport::Ws, "192.0.2.9:50000"),
            (Transport::Wss, "[2001:db8::2]:443"),
        ] {
            let flow = Flow {
                transport,
                peer: peer.parse().unwrap(),
            };
            let token = t.encode(flow);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
            assert_eq!(t.decode(&token), Some(flow));
            assert_eq!(FlowTokens::new(b"other").decode(&token), None);
            let mut forged = token.clone().into_bytes();
            forged[3] = if forged[3] == b'0' { b'1' } else { b'0' };
            assert_eq!(t.decode(std::str::from_utf8(&forged).unwrap()), None);
        }
        assert_eq!(t.decode("u"), None);
        assert_eq!(t.decode("ü0000000000000000000000000"), None);
    }
}
