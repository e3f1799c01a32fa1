//! `conn-load`: REGISTER load over connections, for the TLS and WebSocket benchmark
//! (`bench/connections.sh`), since SIPp here is built without TLS.
//!
//! - `register`: `--connections` connections, each registering its own user
//!   (`u<n>@<domain>`, open registration) and refreshing it as fast as its 200s come
//!   (one request in flight per connection) for `--seconds`; prints the rate and the
//!   server's CPU microseconds per registration (from `/proc/<server-pid>/stat`, over the
//!   timed window only, after every connection is up).
//! - `handshake`: `--connections` tasks opening and closing connections (TLS: a full
//!   handshake; WSS: handshake and upgrade) for `--seconds`; prints handshakes per second
//!   and the server's CPU per handshake.
//! - `idle`: opens `--connections` connections, registers once on each, prints `ready`
//!   and holds them until its standard input closes (for the memory per connection).

use clap::{Parser, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Transport {
    Tcp,
    Tls,
    Ws,
    Wss,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Mode {
    Register,
    Handshake,
    Idle,
}

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, value_enum)]
    transport: Transport,
    #[arg(long)]
    target: SocketAddr,
    /// The certificate (PEM) the server's must chain to (TLS, WSS).
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// The name asked for (SNI) and verified.
    #[arg(long, default_value = "localhost")]
    name: String,
    #[arg(long, default_value_t = 100)]
    connections: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value = "127.0.0.1")]
    domain: String,
    /// The server's process id, for its CPU time over the timed window.
    #[arg(long)]
    server_pid: Option<u32>,
}

/// The server's user + system CPU time so far, in microseconds.
fn cpu_us(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1e6 / 100.0) // USER_HZ is 100 on Linux
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection that sends a SIP message and reads the next one.
enum Conn {
    Stream(Box<dyn Io>, Vec<u8>),
    Ws(Box<tokio_tungstenite::WebSocketStream<Box<dyn Io>>>),
}

impl Conn {
    async fn exchange(&mut self, msg: &str) -> std::io::Result<()> {
        match self {
            Conn::Stream(s, buf) => {
                s.write_all(msg.as_bytes()).await?;
                // the answer: a head ending in CRLF CRLF (our server sends no body)
                buf.clear();
                let mut chunk = [0u8; 2048];
                loop {
                    let n = s.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.ends_with(b"\r\n\r\n") {
                        break;
                    }
                }
                if !buf.starts_with(b"SIP/2.0 200") {
                    return Err(std::io::Error::other(
                        String::from_utf8_lossy(buf).into_owned(),
                    ));
                }
                Ok(())
            }
            Conn::Ws(ws) => {
                ws.send(Message::text(msg))
                    .await
                    .map_err(std::io::Error::other)?;
                loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) if t.starts_with("SIP/2.0 200") => return Ok(()),
                        Some(Ok(Message::Text(t))) => {
                            return Err(std::io::Error::other(t.to_string()));
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(std::io::Error::other(e)),
                        None => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                    }
                }
            }
        }
    }
}

fn tls_config(ca: Option<&std::path::Path>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).expect("--ca readable");
        for c in CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.expect("PEM")).expect("an anchor");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn open(args: &Args, tls: &Arc<rustls::ClientConfig>) -> std::io::Result<Conn> {
    let tcp = TcpStream::connect(args.target).await?;
    tcp.set_nodelay(true)?;
    let io: Box<dyn Io> = match args.transport {
        Transport::Tcp | Transport::Ws => Box::new(tcp),
        Transport::Tls | Transport::Wss => {
            let name = ServerName::try_from(args.name.clone()).map_err(std::io::Error::other)?;
            let c = tokio_rustls::TlsConnector::from(tls.clone());
            Box::new(c.connect(name, tcp).await?)
        }
    };
    Ok(match args.transport {
        Transport::Tcp | Transport::Tls => Conn::Stream(io, Vec::with_capacity(1024)),
        Transport::Ws | Transport::Wss => {
            let scheme = if args.transport == Transport::Wss {
                "wss"
            } else {
                "ws"
            };
            let url = format!("{scheme}://{}:{}/", args.name, args.target.port());
            let mut req =
                tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
                    .map_err(std::io::Error::other)?;
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                "sip".parse().expect("a header value"),
            );
            let (ws, _) = tokio_tungstenite::client_async(req, io)
                .await
                .map_err(std::io::Error::other)?;
            Conn::Ws(Box::new(ws))
        }
    })
}

fn register(args: &Args, n: usize, cseq: u32) -> String {
    let via = match args.transport {
        Transport::Tcp => "TCP",
        Transport::Tls => "TLS",
        Transport::Ws => "WS",
        Transport::Wss => "WSS",
    };
    let d = &args.domain;
    format!(
        "REGISTER sip:{d} SIP/2.0\r\nVia: SIP/2.0/{via} 127.0.0.1:5999;branch=z9hG4bK-{n}-{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:u{n}@{d}>;tag=t{n}\r\nTo: <sip:u{n}@{d}>\r\nCall-ID: conn-load-{}-{n}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:u{n}@127.0.0.1:5999;transport={}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
        std::process::id(),
        via.to_ascii_lowercase()
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Arc::new(Args::parse());
    let tls = tls_config(args.ca.as_deref());
    let window = Duration::from_secs_f64(args.seconds);
    match args.mode {
        Mode::Register | Mode::Idle => {
            // Connect everything first (a few at a time: no accept backlog overflows).
            let mut conns = Vec::with_capacity(args.connections);
            for n in 0..args.connections {
                let mut c = open(&args, &tls)
                    .await
                    .unwrap_or_else(|e| panic!("connection {n}: {e}"));
                c.exchange(&register(&args, n, 1))
                    .await
                    .unwrap_or_else(|e| panic!("REGISTER {n}: {e}"));
                conns.push(c);
            }
            if args.mode == Mode::Idle {
                println!("ready {} connections", conns.len());
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                return;
            }
            let done = Arc::new(AtomicU64::new(0));
            let cpu0 = cpu_us(args.server_pid);
            let started = Instant::now();
            let deadline = started + window;
            let mut tasks = Vec::new();
            for (n, mut c) in conns.into_iter().enumerate() {
                let (args, done) = (args.clone(), done.clone());
                tasks.push(tokio::spawn(async move {
                    let mut cseq = 2;
                    while Instant::now() < deadline {
                        c.exchange(&register(&args, n, cseq))
                            .await
                            .unwrap_or_else(|e| panic!("{n}: {e}"));
                        cseq += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await.expect("a load task");
            }
            let secs = started.elapsed().as_secs_f64();
            let regs = done.load(Ordering::Relaxed) as f64;
            let cpu = cpu_us(args.server_pid)
                .zip(cpu0)
                .map(|(b, a)| (b - a) / regs);
            println!(
                "transport={:?} connections={} registrations={} seconds={secs:.1} rate={:.0}/s server_cpu_us_per_reg={}",
                args.transport,
                args.connections,
                regs,
                regs / secs,
                cpu.map_or("-".to_owned(), |c| format!("{c:.1}"))
            );
        }
        Mode::Handshake => {
            let done = Arc::new(AtomicU64::new(0));
            let cpu0 = cpu_us(args.server_pid);
            let started = Instant::now();
            let deadline = started + window;
            let mut tasks = Vec::new();
            for _ in 0..args.connections {
                let (args, done, tls) = (args.clone(), done.clone(), tls.clone());
                tasks.push(tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let c = open(&args, &tls)
                            .await
                            .unwrap_or_else(|e| panic!("handshake: {e}"));
                        drop(c);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for t in tasks {
                t.await.expect("a handshake task");
            }
            let secs = started.elapsed().as_secs_f64();
            let n = done.load(Ordering::Relaxed) as f64;
            let cpu = cpu_us(args.server_pid).zip(cpu0).map(|(b, a)| (b - a) / n);
            println!(
                "transport={:?} handshakes={n} seconds={secs:.1} rate={:.0}/s server_cpu_us_per_handshake={}",
                args.transport,
                n / secs,
                cpu.map_or("-".to_owned(), |c| format!("{c:.1}"))
            );
        }
    }
}
