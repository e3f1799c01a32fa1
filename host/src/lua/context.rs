//! What the `sip` functions of a state know about the running call: its phase and, in
//! the request hooks, the request (Lua app data, set for exactly the call).

use super::Phase;
use crate::config::Transport;
use crate::sip::Message;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the `sip` functions of a state know about the running call (Lua app data).
#[derive(Debug, Default)]
pub(crate) struct CallData {
    pub phase: Phase,
    /// The request, in request hooks (a copy: cheaper than lending it to Lua).
    pub msg: Option<Message>,
    pub source: Option<SocketAddr>,
    pub transport: Option<Transport>,
    /// The client's verified certificate (TLS, WSS), in request hooks.
    pub peer_cert: Option<crate::tls::PeerCert>,
    /// The request's time; the clock's outside requests.
    pub now_ms: Option<u64>,
    /// The outside services that answered this call (`sip.http`): healthy again once the
    /// call ends without an outage.
    pub answered: Vec<Arc<crate::services::Service>>,
}

/// The script's name as configured (Lua app data), for log lines.
#[derive(Debug, Clone)]
pub(crate) struct ScriptName(pub Arc<str>);
