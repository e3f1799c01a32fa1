//! `sip.http` from a script, against a real HTTP server (Python's http.server in a child
//! process) that answers after a pause: SIPp registers many users with digest while every
//! lookup waits, and the sandbox refuses what `allow_http` does not list.

use crate::sippkit::{free_udp_port, register_digest_users};
use crate::support::{Harness, Register, app, conf, serve};
use sipreg::config::{self, Transport};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A user service: `GET /users/<name>` answers `{"password": "pw-<name>", "ha1": ...}`
/// (the MD5 HA1 of that password for `realm`) after `pause_ms`; 404 for names starting
/// with `nobody`, 500 for `fail...`, a body that is not JSON for `broken...`, `{}` for
/// `empty...`. Killed when dropped.
pub struct UserService {
    child: Child,
    pub port: u16,
}

const SERVICE: &str = r#"
import hashlib, http.server, json, sys, time
pause = int(sys.argv[2]) / 1000.0
realm = sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(pause)
        name = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/users/") or name.startswith("nobody"):
            body, code = b"{}", 404
        elif name.startswith("fail"):
            body, code = b"{}", 500
        elif name.startswith("broken"):
            body, code = b"<html>not json</html>", 200
        elif name.startswith("empty"):
            body, code = b"{}", 200
        else:
            pw = "pw-" + name
            ha1 = hashlib.md5(f"{name}:{realm}:{pw}".encode()).hexdigest()
            body, code = json.dumps({"password": pw, "ha1": ha1}).encode(), 200
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

impl UserService {
    pub fn start(pause_ms: u64) -> UserService {
        UserService::start_on(free_udp_port(), pause_ms, "127.0.0.1")
    }

    /// The service on `port` (again, after one was stopped), with HA1s for `realm`.
    pub fn start_on(port: u16, pause_ms: u64, realm: &str) -> UserService {
        let child = Command::new("python3")
            .args([
                "-c",
                SERVICE,
                &port.to_string(),
                &pause_ms.to_string(),
                realm,
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "the user service never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
        UserService { child, port }
    }
}

impl Drop for UserService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SCRIPT: &str = r#"
local base = sip.config().url
return {
  authenticate = function(ctx)
    local user = ctx.username
    if not user then
      return sip.challenge()
    end
    local r = sip.http.get(base .. user, { timeout_ms = 1500 })
    if r.status == 404 then
      return sip.challenge()
    end
    local t = sip.json.decode(r.body)
    return sip.credentials{ username = user, password = t.password }
  end,
}
"#;

fn config_text(port: u16, allow: &str) -> String {
    conf(
        "configs/loopback.toml",
        &format!(
            r#"
[auth]
challenge = "www"
realm = "127.0.0.1"
algorithms = ["MD5"]

[[hooks]]
type = "lua"
script = "auth.lua"
allow_http = ["{allow}"]
config = {{ url = "http://127.0.0.1:{port}/users/" }}
"#
        ),
    )
}

#[test]
fn sipp_registers_every_user_through_a_script_that_asks_a_slow_http_service() {
    let service = UserService::start(100);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("auth.lua"), SCRIPT).unwrap();
    let text = config_text(
        service.port,
        &format!("http://127.0.0.1:{}/users/", service.port),
    );
    let cfg = config::parse_in(&text, "http.toml", dir.path().to_path_buf()).unwrap();
    let s = serve(&cfg, app(&cfg, Vec::new()).core);
    let users = 300;
    let (run, _users) = register_digest_users(
        s.running.addr(Transport::Udp).unwrap(),
        users,
        100,
        "127.0.0.1",
    );
    run.finish().unwrap();
    for n in [1, users / 2, users] {
        s.wait_registered(&format!("u{n}@127.0.0.1"));
    }
    let parking = s.running.core.parking();
    assert!(
        parking.parked.load(std::sync::atomic::Ordering::Relaxed) >= users as u64,
        "every lookup waited"
    );
}

#[test]
fn a_destination_outside_allow_http_raises_and_the_request_fails() {
    let service = UserService::start(0);
    let h = Harness::with_files(
        &config_text(service.port, "http://127.0.0.1:1/elsewhere/"),
        &[("auth.lua", SCRIPT)],
    );
    let r = h.send(&Register::new("u1@127.0.0.1").contact("<sip:u1@192.0.2.1>").header(
        "Authorization: Digest username=\"u1\", realm=\"127.0.0.1\", nonce=\"x\", uri=\"sip:127.0.0.1\", response=\"0\"",
    ).text());
    assert_eq!(r.code, 500, "{r:?}");
}
