//! Clients of our own for TLS, WS and WSS (rustls and tungstenite, blocking), since SIPp
//! here is built without TLS: they connect, send SIP messages, read whole ones back.

use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

/// A folder with a self-signed pair for `localhost` and 127.0.0.1 (`cert.pem`,
/// `key.pem`), as `sipreg cert --self-signed` writes it.
pub fn cert_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hosts = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    sipreg::tls::self_signed::write(&hosts, &cert, &key).unwrap();
    dir
}

/// The `[tls]` table for the pair in `dir`.
pub fn tls_table(dir: &Path) -> String {
    format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nhandshake_timeout = 1\n",
        dir.join("cert.pem").display(),
        dir.join("key.pem").display()
    )
}

/// The certificates in `pem` as trust anchors.
fn roots(pem: &Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let text = std::fs::read(pem).unwrap();
    use rustls::pki_types::pem::PemObject;
    for c in CertificateDer::pem_slice_iter(&text) {
        roots.add(c.unwrap()).unwrap();
    }
    roots
}

/// A client configuration builder trusting the certificates in `pem` (and nothing else).
fn builder(
    pem: &Path,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(pem))
}

/// A client configuration trusting the certificates in `pem` (and nothing else).
pub fn trusting(pem: &Path) -> Arc<rustls::ClientConfig> {
    Arc::new(builder(pem).with_no_client_auth())
}

/// A TLS connection (blocking).
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects over TLS to `addr`, asking for `name`.
///
/// # Errors
/// The handshake's error.
pub fn tls(addr: SocketAddr, name: &str, config: Arc<rustls::ClientConfig>) -> Result<Tls, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock).map_err(|e| e.to_string())?;
    }
    Ok(s)
}

/// An INVITE from a caller at `me` (UDP) to `ruri`, Call-ID and branch from `id`.
pub fn invite(ruri: &str, me: std::net::SocketAddr, id: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1>;tag=c1\r\nTo: <{ruri}>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@{me}>\r\nContent-Length: 0\r\n\r\n"
    )
}

/// `phone` sends `to` an INVITE for `ruri` (Call-ID and branch from `id`); its text.
pub fn call(phone: &std::net::UdpSocket, ruri: &str, id: &str, to: std::net::SocketAddr) -> String {
    let text = invite(ruri, phone.local_addr().unwrap(), id);
    phone.send_to(text.as_bytes(), to).unwrap();
    text
}

/// A UDP phone on a free loopback port, reading with a 5 s timeout.
pub fn caller() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The next datagram, as text.
pub fn recv(s: &std::net::UdpSocket) -> String {
    let mut buf = [0u8; 8192];
    let n = s.recv(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

/// Reads from a byte stream until a whole SIP message (with its body) is in.
pub fn read_message(s: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    let n = n.trim();
                    (n.eq_ignore_ascii_case("content-length") || n == "l")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return String::from_utf8(buf[..end + 4 + len].to_vec()).unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no whole message in 5 s");
        let n = s.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "closed before a whole message: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends a message and reads the next one back.
pub fn exchange(s: &mut (impl Read + Write), message: &str) -> String {
    s.write_all(message.as_bytes()).unwrap();
    s.flush().unwrap();
    read_message(s)
}

/// A byte stream, plain or TLS.
pub trait Io: Read + Write + Send + std::fmt::Debug {}
impl<T: Read + Write + Send + std::fmt::Debug> Io for T {}

/// A WebSocket connection (plain or over TLS), blocking.
pub type Ws = tungstenite::WebSocket<Box<dyn Io>>;

/// Upgrades a connection to `addr` (`ws://` or, with `tls`, `wss://`) offering the
/// given subprotocols (RFC 7118: `sip`).
///
/// # Errors
/// The upgrade's error (an HTTP refusal among them).
pub fn websocket(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    protocols: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let host = if tls.is_some() {
        "localhost".to_owned()
    } else {
        addr.ip().to_string()
    };
    let url = format!("{scheme}://{host}:{}/", addr.port());
    let mut req = url.into_client_request()?;
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    let tcp = TcpStream::connect(addr).map_err(tungstenite::Error::Io)?;
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let stream: Box<dyn Io> = match tls {
        None => Box::new(tcp),
        Some(config) => {
            let name = ServerName::try_from("localhost").unwrap();
            let conn = rustls::ClientConnection::new(config, name).unwrap();
            Box::new(rustls::StreamOwned::new(conn, tcp))
        }
    };
    tungstenite::client(req, stream)
        .map(|(ws, _)| ws)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => {
                tungstenite::Error::Io(std::io::ErrorKind::WouldBlock.into())
            }
        })
}

/// Sends a SIP message as one text message and reads the next text message back.
pub fn ws_exchange(ws: &mut Ws, message: &str) -> String {
    ws.send(Message::text(message)).unwrap();
    ws_next(ws)
}

/// The next text or binary message that is not a qualify OPTIONS (a binding whose
/// Contact is not its source address, as a browser's `.invalid` one, is probed).
pub fn ws_next(ws: &mut Ws) -> String {
    loop {
        let m = ws_any(ws);
        if !m.starts_with("OPTIONS ") || !m.contains("Call-ID: sipreg-qualify-") {
            return m;
        }
    }
}

/// The next text or binary message.
pub fn ws_any(ws: &mut Ws) -> String {
    loop {
        match ws.read().expect("a message") {
            Message::Text(t) => return t.to_string(),
            Message::Binary(b) => return String::from_utf8(b.to_vec()).unwrap(),
            _ => {}
        }
    }
}

/// A test CA: `ca.pem` in its folder, and client certificates it signs.
pub struct Ca {
    pub dir: tempfile::TempDir,
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.as_ref().pem()).unwrap();
        Ca { dir, issuer }
    }

    pub fn pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for these DNS names, and its key (DER).
    pub fn server(
        &self,
        names: &[&str],
    ) -> (
        CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        (cert.der().clone(), der)
    }

    /// A client certificate for `cn` with a `URI:` SAN, and its key (DER).
    pub fn client(
        &self,
        cn: &str,
        uri: &str,
    ) -> (
        CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.subject_alt_names = vec![rcgen::SanType::URI(uri.try_into().unwrap())];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        (cert.der().clone(), der)
    }
}

/// [`trusting`], showing a client certificate.
pub fn trusting_as(
    pem: &Path,
    (cert, key): (
        CertificateDer<'static>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let text = std::fs::read(pem).unwrap();
    use rustls::pki_types::pem::PemObject;
    for c in CertificateDer::pem_slice_iter(&text) {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![cert], key)
            .unwrap(),
    )
}
