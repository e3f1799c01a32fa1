//! Qualify over real sockets: sipreg sends OPTIONS to a NATed binding every second here;
//! SIPp (auto-answering OPTIONS) is shown reachable with its round-trip time; a device
//! that never answers is shown unreachable and removed, the `expire` hooks told once.

use crate::sippkit::{Background, scenario};
use crate::support::{Served, app, conf, now_ms, serve};
use sipreg::config::{self, Transport};
use sipreg::hooks::{ExpireEvent, ExpireReason, HookError, Hooks};
use sipreg::qualify::Reach;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts the `expire` calls for unreachable bindings.
#[derive(Debug, Default)]
struct Unreachable(AtomicUsize);

impl Hooks for Unreachable {
    fn name(&self) -> &str {
        "count-unreachable"
    }

    fn expire(&self, event: &ExpireEvent<'_>) -> Result<(), HookError> {
        if event.reason == ExpireReason::Unreachable {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn server(counter: Arc<Unreachable>) -> Served {
    let toml = conf(
        "configs/loopback.toml",
        r#"
[qualify]
natted_interval = 1
timeout_ms = 400
failures = 2
remove_unreachable = true

[admin]
listen = "127.0.0.1:0"
"#,
    );
    let cfg = config::parse(&toml, "qualify.toml").unwrap();
    serve(&cfg, app(&cfg, vec![counter]).core)
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const NATTED: &str = r#"  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:bob@[remote_ip]>;tag=[pid]
      To: <sip:bob@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:bob@10.9.9.9:5060;transport=[transport]>
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="5000"/>
  <pause milliseconds="4000"/>
"#;

#[test]
fn an_answering_device_is_reachable_with_its_rtt() {
    for t in [Transport::Udp, Transport::Tcp] {
        let counter = Arc::new(Unreachable::default());
        let s = server(counter.clone());
        let bob = Background::start(s.running.addr(t).unwrap(), t, &scenario(NATTED), &["-aa"]);
        s.wait_registered("bob@127.0.0.1");
        let core = &s.running.core;
        let id = core
            .registrar()
            .location()
            .lookup("bob@127.0.0.1", now_ms())
            .unwrap()[0]
            .registration_id;
        until("reachable", || {
            matches!(core.reach(&id), Reach::Reachable { .. })
        });
        let shown = core.reach(&id).to_string();
        assert!(
            shown.starts_with("OK (") && shown.ends_with(" ms)"),
            "{t}: {shown}"
        );
        // The admin API shows it, and the round trip is in /metrics too.
        let api = crate::admin::base(s.running.admin.unwrap());
        let (_, v) = crate::admin::http("GET", &format!("{api}/api/registrations"), None, None);
        let listed = &v["registrations"][0];
        assert!(
            listed["reach"].as_str().unwrap().starts_with("OK ("),
            "{t}: {v}"
        );
        assert!(
            listed["rtt_ms"].is_u64() && listed["natted"] == true,
            "{t}: {v}"
        );
        let metrics = sipreg::admin::render_metrics(core);
        let answered = crate::admin::sample(&metrics, "sipreg_qualify_rtt_seconds_count");
        assert!(answered >= 1.0, "{t}: {metrics}");
        bob.finish().unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(counter.0.load(Ordering::Relaxed), 0);
    }
}

#[test]
fn a_silent_device_is_unreachable_then_removed_once() {
    let counter = Arc::new(Unreachable::default());
    let s = server(counter.clone());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let register = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;rport;branch=z9hG4bK-q1\r\nMax-Forwards: 70\r\nFrom: <sip:carol@127.0.0.1>;tag=1\r\nTo: <sip:carol@127.0.0.1>\r\nCall-ID: q1\r\nCSeq: 1 REGISTER\r\nContact: <sip:carol@10.9.9.9:5060>\r\nContent-Length: 0\r\n\r\n";
    sock.send_to(register.as_bytes(), s.running.addr(Transport::Udp).unwrap())
        .unwrap();
    s.wait_registered("carol@127.0.0.1");
    // what arrives at the silent device: OPTIONS to its private Contact, at its source
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 2048];
    let mut options = 0;
    while options < 2 {
        let n = sock.recv(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.starts_with("OPTIONS ") {
            assert!(
                text.starts_with("OPTIONS sip:carol@10.9.9.9:5060 SIP/2.0\r\n"),
                "{text}"
            );
            options += 1;
        }
    }
    let location = s.running.core.registrar().location().clone();
    until("removed", || {
        location
            .lookup("carol@127.0.0.1", now_ms())
            .unwrap()
            .is_empty()
    });
    assert_eq!(
        counter.0.load(Ordering::Relaxed),
        1,
        "the expire hook is told once"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(counter.0.load(Ordering::Relaxed), 1);
}
