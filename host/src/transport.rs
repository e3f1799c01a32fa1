//! The transports the registrar speaks, named once: how Via, the configuration and URIs
//! write them, and what each implies (a connection, encryption, a default port).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A transport the registrar speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    /// SIP over TLS over TCP (RFC 3261 section 26.2, RFC 5922).
    Tls,
    /// SIP over WebSocket (RFC 7118).
    Ws,
    /// SIP over WebSocket over TLS (RFC 7118).
    Wss,
}

impl Transport {
    /// Every transport, in the order the configuration's documentation lists them.
    pub const ALL: [Transport; 5] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ];

    /// The token as Via writes it.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// The name as the configuration writes it (and as the `transport` URI parameter).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }

    /// The transport a configuration or URI names (any case).
    pub fn parse(name: &str) -> Option<Transport> {
        Transport::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// Whether it runs over a connection (everything but UDP): a device registered over
    /// it is reached on its connection only, which CRLF keep-alives hold open.
    pub fn is_connection(self) -> bool {
        self != Transport::Udp
    }

    /// Whether it is encrypted (TLS, WSS): what a `sips:` target needs.
    pub fn is_secure(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    /// The port a URI without one means (RFC 3261 section 19.1.2, RFC 7118 uses the
    /// HTTP ports).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Udp | Transport::Tcp => 5060,
            Transport::Tls => 5061,
            Transport::Ws => 80,
            Transport::Wss => 443,
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
