//! Listening sockets for the connection-oriented transports, and the connections this
//! server opens itself (a forward over TCP or TLS to a destination without an open
//! connection), each served like an accepted one so that the responses come back on it.

use super::accept::Serving;
use super::send::{Connect, failed};
use super::{Peer, stream};
use crate::transport::Transport;
use std::io;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub(super) async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// How long a new outgoing connection (with its TLS handshake) may take to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens the connections the sender asks for.
pub(super) fn connector(
    mut asked: mpsc::Receiver<Connect>,
    serving: Serving,
    tasks: &mut JoinSet<()>,
) {
    tasks.spawn(async move {
        while let Some(c) = asked.recv().await {
            let Ok(ticket) = serving.admission.admit_outgoing() else {
                failed(c.to, &"as many connections are open as tcp_max_connections allows");
                continue;
            };
            let serving = serving.clone();
            tokio::spawn(async move {
                let (to, transport) = (c.to, c.transport);
                let opened = tokio::time::timeout(CONNECT_TIMEOUT, async {
                    let tcp = tokio::net::TcpStream::connect(to).await?;
                    let _ = tcp.set_nodelay(true);
                    Ok::<_, io::Error>(tcp)
                })
                .await;
                let tcp = match opened {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return failed(to, &e),
                    Err(_) => return failed(to, &"connect timed out"),
                };
                let (sender, limits) = (serving.sender.clone(), serving.limits);
                let peer = Peer {
                    transport,
                    addr: to,
                    cert: None,
                };
                let served = match transport {
                    Transport::Tls => {
                        let client = match serving.secure.client() {
                            Ok(c) => c,
                            Err(e) => return failed(to, &e),
                        };
                        // RFC 5922 section 7.2: the URI's domain, sent as SNI and
                        // looked for in the certificate; an IP address otherwise.
                        let name = match c.name.as_deref().map(|n| {
                            rustls::pki_types::ServerName::try_from(n.to_owned())
                        }) {
                            Some(Ok(n)) => n,
                            Some(Err(_)) => return failed(to, &"not a name TLS can verify"),
                            None => rustls::pki_types::ServerName::from(to.ip()),
                        };
                        let connector = tokio_rustls::TlsConnector::from(client.config.clone());
                        match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                            .await
                        {
                            Ok(Ok(tls)) => {
                                stream::serve(tokio::io::split(tls), peer, sender, ticket, limits, Some(c.first))
                                    .await
                            }
                            Ok(Err(e)) => return failed(to, &format!("TLS: {e}")),
                            Err(_) => return failed(to, &"TLS handshake timed out"),
                        }
                    }
                    _ => stream::serve(tcp.into_split(), peer, sender, ticket, limits, Some(c.first)).await,
                };
                if let Err(e) = served {
                    tracing::debug!(target: "sipreg::server", peer = %to, error = %e, "connection ended");
                }
            });
        }
    });
}
