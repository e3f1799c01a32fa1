//! Hostile scripts against a running `sipreg` (issue 18, finding 1): on c01b7a9 two
//! REGISTERs that ran a backtracking pattern or a looping finalizer wedged every Lua state
//! at 100 % CPU; no REGISTER was answered again and SIGTERM did not stop the process.

use super::register;
use crate::process::Process;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn server(
    script: &str,
    extra_hook_keys: &str,
    server_keys: &str,
) -> (tempfile::TempDir, Process, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.lua"), script).unwrap();
    std::fs::write(
        dir.path().join("sipreg.toml"),
        format!(
            "[server]\nlisten = [\"udp:127.0.0.1:0\"]\ndomains = [\"example.com\"]\n{server_keys}\n[store]\ntype = \"memory\"\n\n[auth]\nchallenge = \"off\"\n\n[[hooks]]\ntype = \"lua\"\nscript = \"policy.lua\"\n{extra_hook_keys}\n"
        ),
    )
    .unwrap();
    let (p, addr) = Process::run(dir.path());
    (dir, p, addr)
}

/// Sends a REGISTER from a socket of its own; the socket, to read the answer from.
fn send(addr: SocketAddr, aor: &str, header: Option<&str>) -> UdpSocket {
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = register(aor).call_id(&format!("wedge-{aor}"));
    if let Some(h) = header {
        r = r.header(h);
    }
    c.send_to(r.text().as_bytes(), addr).unwrap();
    c
}

/// The status line of the next answer (a qualify probe of the binding, which comes to the
/// same socket, is passed over).
fn status(c: &UdpSocket) -> String {
    let mut buf = [0u8; 4096];
    loop {
        let (len, _) = c.recv_from(&mut buf).expect("an answer");
        let text = String::from_utf8_lossy(&buf[..len]);
        let first = text.lines().next().unwrap_or("");
        if first.starts_with("SIP/2.0 ") {
            return first.to_owned();
        }
    }
}

const HOSTILE: &str = r#"
local M = {}
function M.on_request(ctx)
  local bomb = sip.header("X-Bomb")
  if bomb == "backtrack" then
    return sip.respond(403, tostring(string.find(string.rep("a", 30000), ".-.-.-.-.-.-b")))
  end
  if bomb == "finalizer" then
    setmetatable({}, { __gc = function() while true do end end })
    collectgarbage("collect")
  end
end
return M
"#;

#[test]
fn hostile_scripts_fail_their_request_and_nothing_else() {
    let (_dir, mut p, addr) = server(HOSTILE, "", "");
    let bombs: Vec<UdpSocket> = (0..8)
        .map(|i| {
            let kind = if i % 2 == 0 { "backtrack" } else { "finalizer" };
            send(
                addr,
                &format!("bomb{i}@example.com"),
                Some(&format!("X-Bomb: {kind}")),
            )
        })
        .collect();
    let started = Instant::now();
    let honest = send(addr, "alice@example.com", None);
    assert_eq!(status(&honest), "SIP/2.0 200 OK");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "the honest REGISTER took {took:?}"
    );
    for b in &bombs {
        assert!(status(b).starts_with("SIP/2.0 500"));
    }
    p.wait_for("instruction budget of 1000000 exceeded");
    // and afterwards every state still answers
    for i in 0..8 {
        assert_eq!(
            status(&send(addr, &format!("after{i}@example.com"), None)),
            "SIP/2.0 200 OK"
        );
    }
    let exit = p
        .terminate(Duration::from_secs(10))
        .expect("stopped within its grace period");
    assert!(exit.success(), "{exit:?}");
}

/// A hook that runs as long as its (generous) limits let it does not hold a stop past
/// `shutdown_grace`: the process says so and exits.
#[test]
fn sigterm_exits_within_the_grace_period_whatever_a_hook_does() {
    let (_dir, mut p, addr) = server(
        "return { on_request = function() if sip.header('X-Bomb') then print('looping') while true do end end end }\n",
        "instruction_budget = 1000000000000000\ntime_limit_ms = 600000\n",
        "shutdown_grace = 1\n",
    );
    assert_eq!(
        status(&send(addr, "alice@example.com", None)),
        "SIP/2.0 200 OK"
    );
    let _busy = send(addr, "bomb@example.com", Some("X-Bomb: loop"));
    p.wait_for("looping");
    let started = Instant::now();
    let exit = p
        .terminate(Duration::from_secs(5))
        .expect("exited within 5 s");
    assert!(!exit.success());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        p.next_with(
            "not stopped within the grace period",
            // the process has exited: its last lines may still be on their way under load
            Duration::from_secs(5)
        )
        .is_some()
            || p.earlier("not stopped within the grace period").is_some()
    );
}
