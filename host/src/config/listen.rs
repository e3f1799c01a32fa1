//! Listen addresses: `udp:127.0.0.1:5060`, `tcp:[::1]:5060`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// A transport the registrar speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The token as Via writes it.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// The name as the configuration writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
        let transport = match t {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            other => {
                return Err(format!(
                    "unknown transport \"{other}\" in \"{s}\", expected udp or tcp"
                ));
            }
        };
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
