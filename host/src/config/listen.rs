//! Listen addresses: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`, `tls:0.0.0.0:5061`,
//! `ws:127.0.0.1:8080`, `wss:[::]:8443`.

pub use crate::transport::Transport;
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;

/// One listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Listen {
    pub transport: Transport,
    pub addr: SocketAddr,
}

impl TryFrom<String> for Listen {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        let (t, addr) = s
            .split_once(':')
            .ok_or_else(|| format!("\"{s}\" is not transport:address:port"))?;
        let transport = Transport::parse(t).ok_or_else(|| {
            format!("unknown transport \"{t}\" in \"{s}\", expected udp, tcp, tls, ws or wss")
        })?;
        let addr = addr
            .parse()
            .map_err(|_| format!("\"{addr}\" in \"{s}\" is not an IP address and port"))?;
        Ok(Listen { transport, addr })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.addr)
    }
}
