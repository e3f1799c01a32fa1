//! Hooks that wait (an outside lookup) park their request, not a thread: SIPp registers
//! many users through a hook that answers after a pause, retransmissions of a parked
//! request are absorbed and answered again, a cap refuses what does not fit, a deadline
//! ends a hook that waits too long.

use crate::sippkit::{Background, register_each_call};
use crate::support::{Harness, Register, app, conf, logged, serve};
use sipreg::config::{self, Transport};
use sipreg::core::{Handled, Output};
use sipreg::hooks::{Answer, AuthDecision, AuthRequest, Hooks, RequestInfo};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An `authenticate` that asks a slow service: it answers Pass after `pause`, except for
/// users whose name starts with `fast` (answered at once), and records how many of its
/// calls waited at once.
struct Slow {
    pause: Duration,
    calls: AtomicUsize,
    waiting: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Slow {
    fn new(pause_ms: u64) -> Arc<Slow> {
        Arc::new(Slow {
            pause: Duration::from_millis(pause_ms),
            calls: AtomicUsize::new(0),
            waiting: Arc::default(),
            most: Arc::default(),
        })
    }
}

impl Hooks for Slow {
    fn name(&self) -> &str {
        "slow-service"
    }

    fn may_wait(&self) -> bool {
        true
    }

    fn start_authenticate(
        &self,
        _req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Answer<AuthDecision> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if auth.aor.starts_with("fast") {
            return Answer::Now(Ok(AuthDecision::Pass));
        }
        let (pause, waiting, most) = (self.pause, self.waiting.clone(), self.most.clone());
        Answer::Later(Box::pin(async move {
            let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(pause).await;
            waiting.fetch_sub(1, Ordering::SeqCst);
            Ok(AuthDecision::Pass)
        }))
    }
}

fn served(extra: &str, hook: &Arc<Slow>) -> crate::support::Served {
    let cfg = config::parse(&conf("configs/loopback.toml", extra), "waiting.toml").unwrap();
    let hooks: Vec<Arc<dyn Hooks>> = vec![hook.clone()];
    serve(&cfg, app(&cfg, hooks).core)
}

#[test]
fn a_slow_hook_parks_requests_and_sipp_registers_every_user() {
    // 100 ms a lookup: four reader threads that waited in it would serve 40 REGISTERs a
    // second, and SIPp (100 a second, 3 s for each 200) would see calls fail.
    let slow = Slow::new(100);
    let s = served("", &slow);
    let server = s.running.addr(Transport::Udp).unwrap();
    let users = 400;
    let run = Background::start(
        server,
        Transport::Udp,
        &register_each_call(300, false),
        &["-m", &users.to_string(), "-r", "100", "-l", "1000"],
    );
    run.finish().unwrap();
    assert_eq!(slow.calls.load(Ordering::SeqCst), users, "one lookup each");
    let most = slow.most.load(Ordering::SeqCst);
    assert!(most >= 8, "at most {most} lookups waited at once");
    for n in [1, users / 2, users] {
        s.wait_registered(&format!("u{n}@127.0.0.1"));
    }
    let parking = s.running.core.parking();
    assert_eq!(parking.waiting(), 0);
    assert!(parking.parked.load(Ordering::Relaxed) >= users as u64);
}

fn udp_client(to: std::net::SocketAddr) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.connect(to).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    c
}

/// The next response within `within` (the qualify probes to the contact are skipped).
fn recv(c: &UdpSocket, within: Duration) -> Option<String> {
    let until = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        if let Ok(n) = c.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.starts_with("SIP/2.0 ") {
                return Some(text);
            }
        }
    }
    None
}

/// A REGISTER of `user` as its own transaction (a branch of its own).
fn register(user: &str, call_id: &str) -> String {
    let mut r = Register::new(&format!("{user}@127.0.0.1"))
        .call_id(call_id)
        .contact(&format!("<sip:{user}@127.0.0.1:5999>"))
        .expires("300");
    r.branch = format!("z9hG4bK-{call_id}");
    r.text()
}

#[test]
fn a_retransmission_of_a_parked_register_is_absorbed_then_answered_again() {
    let slow = Slow::new(400);
    let s = served("", &slow);
    let c = udp_client(s.running.addr(Transport::Udp).unwrap());
    let req = register("erin", "retrans-1");
    c.send(req.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    c.send(req.as_bytes()).unwrap(); // while the lookup waits
    let first = recv(&c, Duration::from_secs(3)).expect("a reply");
    assert!(first.starts_with("SIP/2.0 200"), "{first}");
    assert_eq!(
        recv(&c, Duration::from_millis(600)),
        None,
        "one answer for two copies"
    );
    assert_eq!(slow.calls.load(Ordering::SeqCst), 1, "handled once");
    // After the answer (Timer J: 32 s over UDP), a copy gets the same answer again, at
    // once, without another lookup.
    let sent = Instant::now();
    c.send(req.as_bytes()).unwrap();
    let again = recv(&c, Duration::from_secs(1)).expect("the answer again");
    assert!(sent.elapsed() < Duration::from_millis(300));
    assert_eq!(again, first);
    assert_eq!(slow.calls.load(Ordering::SeqCst), 1, "not handled again");
    let metrics = sipreg::admin::render_metrics(&s.running.core);
    let sample = |name: &str| crate::admin::sample(&metrics, name);
    assert_eq!(
        sample("sipreg_retransmissions_absorbed_total"),
        2.0,
        "{metrics}"
    );
    assert_eq!(sample("sipreg_requests_parked_total"), 1.0);
    assert_eq!(sample("sipreg_requests_waiting"), 0.0);
}

#[test]
fn beyond_max_waiting_a_request_gets_503_with_retry_after() {
    let slow = Slow::new(600);
    let s = served("[server]\nmax_waiting = 2\n", &slow);
    let c = udp_client(s.running.addr(Transport::Udp).unwrap());
    for i in 0..5 {
        c.send(register(&format!("user{i}"), &format!("cap-{i}")).as_bytes())
            .unwrap();
    }
    // A request whose hook does not wait is not parked, so it is never refused.
    c.send(register("fastlane", "cap-fast").as_bytes()).unwrap();
    let mut codes = Vec::new();
    while let Some(r) = recv(&c, Duration::from_secs(2)) {
        let code = r[8..11].to_owned();
        if code == "503" {
            assert!(r.contains("\r\nRetry-After: 5\r\n"), "{r}");
            assert!(r.contains("Too many requests waiting"), "{r}");
        }
        codes.push(code);
        if codes.len() == 6 {
            break;
        }
    }
    codes.sort();
    assert_eq!(codes, ["200", "200", "200", "503", "503", "503"]);
    let metrics = sipreg::admin::render_metrics(&s.running.core);
    let sample = |name: &str| crate::admin::sample(&metrics, name);
    assert_eq!(
        sample("sipreg_requests_wait_refused_total"),
        3.0,
        "{metrics}"
    );
}

#[test]
fn a_hook_that_waits_past_the_deadline_fails_the_request() {
    let slow = Slow::new(2_000);
    let s = served("[server]\nwait_deadline_ms = 150\n", &slow);
    let c = udp_client(s.running.addr(Transport::Udp).unwrap());
    let sent = Instant::now();
    c.send(register("late", "deadline-1").as_bytes()).unwrap();
    let r = recv(&c, Duration::from_secs(3)).expect("a reply");
    assert!(r.starts_with("SIP/2.0 500"), "{r}");
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
}

#[test]
fn in_process_a_parked_request_settles_and_a_quick_one_is_not_parked() {
    let slow = Slow::new(50);
    let hooks: Vec<Arc<dyn Hooks>> = vec![slow.clone()];
    let h = Harness::with_hooks(&crate::support::config("off", ""), hooks);
    let quick = Register::new("fast@example.com")
        .contact("<sip:fast@192.0.2.1>")
        .text();
    let mut out = Output::default();
    assert_eq!(
        h.core.handle(h.packet(quick.as_bytes()), &mut out),
        Handled::Replied
    );
    assert!(out.parked.is_none());
    let slow_one = Register::new("alice@example.com")
        .contact("<sip:alice@192.0.2.1>")
        .text();
    let mut out = Output::default();
    assert_eq!(
        h.core.handle(h.packet(slow_one.as_bytes()), &mut out),
        Handled::Parked
    );
    assert!(out.reply.is_empty());
    let lines = logged(|| out.settle());
    assert!(
        String::from_utf8_lossy(&out.reply).starts_with("SIP/2.0 200"),
        "{lines:?}"
    );
}
