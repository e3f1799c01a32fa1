//! `scripts/http_auth.lua` from `examples/http-auth.toml`, against a real HTTP service
//! (Python's http.server): lookups cached, a 404 an unknown user, and a service that
//! fails (5xx, not JSON, no field, down) a 503 with Retry-After and never a 200, logged
//! once per outage and counted in `/metrics`; back, it serves again without a restart.

use super::http::UserService;
use crate::admin::sample;
use crate::scripts::{digest_reply, register};
use crate::sippkit::digest_each_call;
use crate::sippkit::{Background, free_udp_port};
use crate::support::{Harness, Reply, authorization, logged, now_ms, serve};
use sipreg::config::{self, Transport};

/// The example, pointed at the service on `port`, its `on_outage` set to `answer`.
fn example(port: u16, answer: &str) -> Harness {
    Harness::example_edited("http-auth", |t| {
        t.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
            .replace("on_outage = \"503\"", &format!("on_outage = \"{answer}\""))
    })
}

/// A REGISTER of `user@example.com` answered 401, then sent again with `password`.
fn with_digest(h: &Harness, user: &str, password: &str, cseq: u32) -> Reply {
    digest_reply(h, &format!("{user}@example.com"), user, password, cseq)
}

fn metric(h: &Harness, name: &str, port: u16) -> f64 {
    let text = sipreg::admin::render_metrics(&h.core);
    sample(
        &text,
        &format!("{name}{{service=\"http://127.0.0.1:{port}\"}}"),
    )
}

#[test]
fn lookups_are_cached_and_a_404_is_an_unknown_user() {
    let service = UserService::start_on(free_udp_port(), 0, "example.com");
    let port = service.port;
    let h = example(port, "503");
    assert_eq!(with_digest(&h, "u1", "pw-u1", 1).code, 200);
    assert_eq!(with_digest(&h, "u1", "pw-u1", 10).code, 200);
    assert_eq!(with_digest(&h, "u1", "wrong", 20).code, 401);
    assert_eq!(
        metric(&h, "sipreg_service_calls_total", port),
        1.0,
        "cached"
    );
    assert_eq!(with_digest(&h, "nobody1", "x", 30).code, 401);
    assert_eq!(with_digest(&h, "nobody1", "x", 40).code, 401);
    assert_eq!(
        metric(&h, "sipreg_service_calls_total", port),
        2.0,
        "an unknown user is remembered too"
    );
    // u1's credentials do not register u2's alias.
    let r = h.send(
        &register("u2@example.com")
            .cseq(50)
            .header(&format!(
                "Authorization: {}",
                authorization(
                    with_digest(&h, "u2", "", 60)
                        .header("WWW-Authenticate")
                        .unwrap(),
                    "u1",
                    "pw-u1",
                    "sip:example.com",
                    1
                )
            ))
            .text(),
    );
    assert_eq!(r.code, 403, "{}", r.text);
    // A user name that would name another path is not looked up; one with a slash is
    // encoded (the service sees one segment, an unknown user).
    let calls = metric(&h, "sipreg_service_calls_total", port);
    assert_eq!(with_digest(&h, "..", "x", 70).code, 401);
    assert_eq!(metric(&h, "sipreg_service_calls_total", port), calls);
    assert_eq!(with_digest(&h, "nobody/../u1", "pw-u1", 80).code, 401);
    assert_eq!(metric(&h, "sipreg_service_calls_total", port), calls + 1.0);
    assert_eq!(metric(&h, "sipreg_service_failures_total", port), 0.0);
}

#[test]
fn a_failing_service_gets_503_never_200_logged_once_and_recovers() {
    let port = free_udp_port();
    let service = UserService::start_on(port, 0, "example.com");
    let h = example(port, "503");
    let mut replies = Vec::new();
    let lines = logged(|| {
        // Each its own CSeq, so its own branch: not a retransmission of the one before.
        for (n, user) in [(1, "fail1"), (3, "broken1"), (5, "empty1")] {
            replies.push((user, with_digest(&h, user, &format!("pw-{user}"), n)));
        }
        replies.push(("u1", with_digest(&h, "u1", "pw-u1", 10)));
    });
    for (user, r) in &replies[..3] {
        assert_eq!(r.code, 503, "{user}: {}", r.text);
        assert_eq!(r.reason, "Upstream service unavailable");
        assert_eq!(r.header("Retry-After"), Some("30"), "{user}");
    }
    assert_eq!(replies[3].1.code, 200, "a good answer serves again");
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("outside service failing"), 1, "{}", lines.join("\n"));
    assert_eq!(
        count("outside service answers again"),
        1,
        "{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("service=http://127.0.0.1:{port}"))),
        "{}",
        lines.join("\n")
    );
    assert_eq!(metric(&h, "sipreg_service_failures_total", port), 3.0);
    assert_eq!(metric(&h, "sipreg_service_up", port), 1.0);

    // Down: a refused connection; a cached user still registers.
    drop(service);
    let r = with_digest(&h, "u2", "pw-u2", 20);
    assert_eq!(
        (r.code, r.header("Retry-After")),
        (503, Some("30")),
        "{}",
        r.text
    );
    assert_eq!(metric(&h, "sipreg_service_up", port), 0.0);
    assert_eq!(with_digest(&h, "u1", "pw-u1", 30).code, 200);
    // Back on the same port: served again, without a restart.
    let _service = UserService::start_on(port, 0, "example.com");
    assert_eq!(with_digest(&h, "u2", "pw-u2", 40).code, 200);
    assert_eq!(metric(&h, "sipreg_service_up", port), 1.0);
}

#[test]
fn on_outage_may_answer_500_or_challenge_again() {
    let service = UserService::start_on(free_udp_port(), 0, "example.com");
    for (answer, code) in [("500", 500), ("challenge", 401)] {
        let h = example(service.port, answer);
        let r = with_digest(&h, "fail1", "pw-fail1", 1);
        assert_eq!(r.code, code, "{answer}: {}", r.text);
        if code == 401 {
            assert!(r.header("WWW-Authenticate").is_some());
        }
    }
}

/// SIPp registers 2,000 users at 500 a second with digest while every lookup takes 100 ms
/// (impossible if a thread waited for each); with the service stopped, 100 more get 503
/// and none a 200; started again, the same 100 register.
#[test]
fn sipp_registers_2000_users_at_500_per_second_then_503_while_the_service_is_down() {
    let port = free_udp_port();
    let service = UserService::start_on(port, 100, "example.com");
    let dir = crate::support::copy_examples();
    let path = dir.path().join("examples/http-auth.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("http_max_connections = 32", "http_max_connections = 100")
        // The whole suite runs beside it on two cores: a lookup that is late there is
        // not the outage this test makes later.
        .replace("timeout_ms = 500", "timeout_ms = 3000")
        .replace("wait_deadline_ms = 2000", "wait_deadline_ms = 4000")
        .replace(
            "listen = [\"udp:127.0.0.1:5060\", \"tcp:127.0.0.1:5060\"]",
            "listen = [\"udp:127.0.0.1:0\"]",
        );
    std::fs::write(&path, text).unwrap();
    let cfg = config::load_file(&path).unwrap();
    let s = serve(&cfg, crate::support::app(&cfg, Vec::new()).core);
    let addr = s.running.addr(Transport::Udp).unwrap();
    let run = |first: usize, users: usize, rate: &str, expect: u16| {
        let (scenario, csv) = digest_each_call(first, users, "example.com", expect);
        let file = csv.path().join("users.csv");
        Background::start(
            addr,
            Transport::Udp,
            &scenario,
            &[
                "-m",
                &users.to_string(),
                "-r",
                rate,
                "-l",
                "2000",
                "-inf",
                file.to_str().unwrap(),
                "-auth_uri",
                "example.com",
            ],
        )
        .finish()
    };
    run(1, 2000, "500", 200).unwrap();
    for n in [1, 1000, 2000] {
        s.wait_registered(&format!("u{n}@example.com"));
    }
    drop(service);
    run(3001, 100, "100", 503).unwrap();
    let metrics = sipreg::admin::render_metrics(&s.running.core);
    let svc = format!("{{service=\"http://127.0.0.1:{port}\"}}");
    assert!(sample(&metrics, &format!("sipreg_service_failures_total{svc}")) >= 100.0);
    assert_eq!(sample(&metrics, &format!("sipreg_service_up{svc}")), 0.0);
    assert!(
        s.running
            .core
            .registrar()
            .location()
            .lookup("u3001@example.com", now_ms())
            .unwrap()
            .is_empty(),
        "no binding while the service was down"
    );
    let _service = UserService::start_on(port, 100, "example.com");
    run(3001, 100, "100", 200).unwrap();
    s.wait_registered("u3050@example.com");
}
