//! baresip (Debian `baresip`), a softphone we did not write, registering with digest auth
//! over UDP, TCP and TLS (trusting our self-signed certificate through `sip_cafile`),
//! and a call routed to its TLS binding reaching it on its connection.

use crate::secure_client::{cert_dir, tls_table};
use crate::support::{Served, app, conf, now_ms, serve};
use sipreg::config::{self, Transport};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Fails the test when baresip is missing (`./test.sh` installs it).
fn need() {
    assert!(
        Path::new("/usr/bin/baresip").exists(),
        "baresip is missing: ./test.sh installs it"
    );
}

/// alice is challenged with MD5 alone (all baresip answers), the others with
/// `[auth] algorithms`, SHA-256 and MD5.
fn server(certs: &Path) -> Served {
    server_with(certs, "algorithms = [\"MD5\"]\n")
}

fn server_with(certs: &Path, more: &str) -> Served {
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            r#"[server]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0", "tls:127.0.0.1:0"]

[auth]
challenge = "www"
algorithms = ["SHA-256", "MD5"]

[[aliases]]
alias = "alice@127.0.0.1"
password = "wonderland"
transports = ["udp", "tcp", "tls"]
{more}
{}"#,
            tls_table(certs)
        ),
    );
    let cfg = config::parse(&toml, "baresip.toml").unwrap_or_else(|e| panic!("{e}"));
    serve(&cfg, app(&cfg, Vec::new()).core)
}

/// A baresip registering alice over `transport` to `to`, with its own folder; killed
/// when dropped.
struct Baresip {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn baresip(to: SocketAddr, transport: Transport, ca: &Path) -> Baresip {
    baresip_as("alice", "wonderland", to, transport, ca)
}

fn baresip_as(
    user: &str,
    password: &str,
    to: SocketAddr,
    transport: Transport,
    ca: &Path,
) -> Baresip {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:0\nsip_cafile {}\nmodule_path /usr/lib/baresip/modules\nmodule g711.so\nmodule_app account.so\naudio_player none\naudio_source none\naudio_alert none\n",
        ca.display()
    );
    std::fs::write(dir.path().join("config"), config).unwrap();
    let t = transport.as_str();
    let account = format!(
        "<sip:{user}@127.0.0.1;transport={t}>;auth_pass={password};outbound=\"sip:{to};transport={t}\";regint=600\n"
    );
    std::fs::write(dir.path().join("accounts"), account).unwrap();
    let child = Command::new("baresip")
        .args(["-f", dir.path().to_str().unwrap(), "-t", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Baresip { child, _dir: dir }
}

#[test]
fn baresip_registers_with_digest_over_udp_tcp_and_tls() {
    need();
    let certs = cert_dir();
    let served = server(certs.path());
    let r = &served.running;
    for t in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let _phone = baresip(r.addr(t).unwrap(), t, &certs.path().join("cert.pem"));
        served.wait_registered("alice@127.0.0.1");
        let b = r
            .core
            .registrar()
            .location()
            .lookup("alice@127.0.0.1", now_ms())
            .unwrap();
        assert_eq!(b.len(), 1, "{t}: {b:?}");
        assert_eq!(b[0].transport, t, "{b:?}");
        assert!(
            b[0].contact.contains(&format!("transport={t}")) || t == Transport::Udp,
            "{b:?}"
        );
        drop(_phone); // killed: it does not unregister
        r.core
            .registrar()
            .location()
            .remove("alice@127.0.0.1", &b[0].registration_id)
            .unwrap();
    }
}

#[test]
fn a_call_reaches_baresip_on_its_tls_connection() {
    need();
    let certs = cert_dir();
    let served = server(certs.path());
    let r = &served.running;
    let _phone = baresip(
        r.addr(Transport::Tls).unwrap(),
        Transport::Tls,
        &certs.path().join("cert.pem"),
    );
    served.wait_registered("alice@127.0.0.1");
    let caller = UdpSocket::bind("127.0.0.1:0").unwrap();
    caller
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let me = caller.local_addr().unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        me.port() + 2
    );
    let invite = format!(
        "INVITE sip:alice@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKbs1\r\nMax-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: bs1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    caller
        .send_to(invite.as_bytes(), r.addr(Transport::Udp).unwrap())
        .unwrap();
    // baresip answers (100 Trying from us is hop by hop; what comes back is baresip's).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    let answer = loop {
        assert!(
            Instant::now() < deadline,
            "baresip never answered the INVITE"
        );
        let Ok(n) = caller.recv(&mut buf) else {
            continue;
        };
        let m = String::from_utf8_lossy(&buf[..n]).to_string();
        if m.starts_with("SIP/2.0 1") && !m.starts_with("SIP/2.0 100")
            || m.starts_with("SIP/2.0 2")
            || m.starts_with("SIP/2.0 4")
            || m.starts_with("SIP/2.0 5")
            || m.starts_with("SIP/2.0 6")
        {
            break m;
        }
    };
    // It came from baresip, over its TLS connection: its To tag, and our Record-Route
    // names TLS toward it.
    eprintln!("baresip answered: {}", answer.lines().next().unwrap_or(""));
    assert!(answer.contains("CSeq: 1 INVITE"), "{answer}");
    let to = answer.lines().find(|l| l.starts_with("To:")).unwrap();
    assert!(to.contains("tag="), "{answer}");
    assert!(!answer.starts_with("SIP/2.0 480"), "{answer}");
}

/// baresip 1.0.0 cannot answer a challenge that offers SHA-256 beside MD5 (it registers
/// nobody then); an alias with `algorithms = ["MD5"]` is challenged with MD5 alone, so the
/// deployment can offer SHA-256 to the phones that speak it.
#[test]
fn an_alias_of_its_own_algorithms_lets_baresip_register_beside_sha_256() {
    need();
    let certs = cert_dir();
    let served = server_with(
        certs.path(),
        "algorithms = [\"MD5\"]\n\n[[aliases]]\nalias = \"bob@127.0.0.1\"\npassword = \"builder\"\n",
    );
    let udp = served.running.addr(Transport::Udp).unwrap();
    let ca = certs.path().join("cert.pem");
    let lookup = |aor: &str| {
        served
            .running
            .core
            .registrar()
            .location()
            .lookup(aor, now_ms())
            .unwrap()
            .len()
    };
    let _alice = baresip_as("alice", "wonderland", udp, Transport::Udp, &ca);
    let _bob = baresip_as("bob", "builder", udp, Transport::Udp, &ca);
    served.wait_registered("alice@127.0.0.1");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lookup("bob@127.0.0.1"),
        0,
        "bob, challenged with SHA-256 and MD5, is not"
    );
}

/// The same, decided per request: a script challenges a phone whose User-Agent says
/// baresip with MD5 alone, and leaves everything else to the built-in policy (SHA-256 and
/// MD5 for everyone, bob included). baresip registers alice; bob, whose phone says it is
/// baresip too, registers as well, where the alias list alone would lock him out.
#[test]
fn a_script_offers_md5_alone_to_baresip_by_its_user_agent() {
    need();
    let certs = cert_dir();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("offer.lua");
    std::fs::write(
        &script,
        r#"
return {
  authenticate = function(ctx)
    local agent = sip.user_agent() or ""
    if ctx.username == nil and agent:find("^baresip") then
      return sip.challenge { algorithms = { "MD5" } }
    end
  end,
}
"#,
    )
    .unwrap();
    let served = server_with(
        certs.path(),
        &format!(
            "\n[[aliases]]\nalias = \"bob@127.0.0.1\"\npassword = \"builder\"\n\n[[hooks]]\ntype = \"lua\"\nscript = \"{}\"\n",
            script.display()
        ),
    );
    let udp = served.running.addr(Transport::Udp).unwrap();
    let ca = certs.path().join("cert.pem");
    let _alice = baresip_as("alice", "wonderland", udp, Transport::Udp, &ca);
    let _bob = baresip_as("bob", "builder", udp, Transport::Udp, &ca);
    served.wait_registered("alice@127.0.0.1");
    served.wait_registered("bob@127.0.0.1");
}
