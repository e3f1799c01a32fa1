//! The WebRTC demo (`examples/webrtc/`, SIP.js 0.21 as `vendor.sh` fetches it) in two
//! headless Chromiums: alice and bob register over WSS with digest auth, show up as WSS
//! in the admin API, and alice calls bob through sipreg (INVITE, 180, 200, ACK, BYE, each
//! on the browser's WebSocket connection).

use crate::browser::Browser;
use crate::secure_client::{cert_dir, tls_table};
use crate::support::{app, conf, now_ms, serve};
use sipreg::config::{self, Transport};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// The demo's folder.
fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/webrtc")
}

/// Serves the files of `root` over HTTP on a free loopback port (GET only, one
/// connection per request), as `python3 -m http.server` does for an operator.
fn static_server(root: PathBuf) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let root = root.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split(' ').nth(1).unwrap_or("/");
                let path = path.split('?').next().unwrap_or("/");
                let path = if path == "/" { "/index.html" } else { path };
                let file = root.join(path.trim_start_matches('/'));
                let inside = !path.contains("..");
                let (status, body) = match std::fs::read(&file) {
                    Ok(b) if inside => ("200 OK", b),
                    _ => ("404 Not Found", b"not found".to_vec()),
                };
                let kind = match file.extension().and_then(|e| e.to_str()) {
                    Some("html") => "text/html; charset=utf-8",
                    Some("js") => "text/javascript",
                    _ => "application/octet-stream",
                };
                let mut s = &stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(&body);
            });
        }
    });
    addr
}

fn phone(page: &str, aor: &str, password: &str) -> Browser {
    let b = Browser::with_args(&[
        "--ignore-certificate-errors",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
    ]);
    b.go(&format!("{page}&aor={aor}&password={password}"));
    b.until("the page loaded", || {
        b.texts("#status") == ["Not registered"]
    });
    b.click("#register");
    b.until(&format!("{aor} registered"), || {
        b.texts("#status")[0].starts_with("Registered as")
    });
    b
}

fn status(b: &Browser) -> String {
    b.texts("#status").concat()
}

#[test]
fn two_browsers_register_over_wss_and_call_through_sipreg() {
    assert!(
        demo().join("vendor/sip.js/lib/index.js").exists(),
        "SIP.js is missing: ./test.sh runs examples/webrtc/vendor.sh"
    );
    let http = static_server(demo());
    let certs = cert_dir();
    let toml = conf(
        "configs/loopback.toml",
        &format!(
            r#"[server]
listen = ["udp:127.0.0.1:0", "wss:127.0.0.1:0"]
domains = ["example.com"]

[auth]
challenge = "www"
realm = "example.com"

[websocket]
origins = ["http://127.0.0.1:{}"]

[admin]
listen = "127.0.0.1:0"

[[aliases]]
alias = "alice@example.com"
password = "wonderland"

[[aliases]]
alias = "bob@example.com"
password = "builder"

{}"#,
            http.port(),
            tls_table(certs.path())
        ),
    );
    let cfg = config::parse(&toml, "webrtc.toml").unwrap_or_else(|e| panic!("{e}"));
    let served = serve(&cfg, app(&cfg, Vec::new()).core);
    let r = &served.running;
    let wss = r.addr(Transport::Wss).unwrap();
    let page = format!(
        "http://127.0.0.1:{}/?server=wss://localhost:{}&target=sip:bob@example.com",
        http.port(),
        wss.port()
    );
    let alice = phone(&page, "sip:alice@example.com", "wonderland");
    let bob = phone(&page, "sip:bob@example.com", "builder");
    for aor in ["alice@example.com", "bob@example.com"] {
        let b = r.core.registrar().location().lookup(aor, now_ms()).unwrap();
        assert_eq!(b.len(), 1, "{aor}: {b:?}");
        assert_eq!(b[0].transport, Transport::Wss, "{b:?}");
        assert!(b[0].contact.contains(".invalid"), "{b:?}");
    }
    let api = crate::admin::base(r.admin.unwrap());
    let (_, v) = crate::admin::http("GET", &format!("{api}/api/registrations"), None, None);
    let shown: Vec<_> = v["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["transport"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(shown, ["wss", "wss"], "{v}");
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_sipreg"))
        .args(["status", "--admin", &api])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(table.matches(" WSS ").count(), 2, "{table}");

    alice.click("#call");
    bob.until("bob's phone rings", || status(&bob) == "Incoming call");
    alice.until("alice hears ringing", || status(&alice) == "Ringing");
    bob.click("#answer");
    alice.until("alice in call", || status(&alice) == "In call");
    bob.until("bob in call", || status(&bob) == "In call");
    let png = alice.screenshot();
    let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join("webrtc-demo.png");
    std::fs::write(&kept, &png).unwrap();
    alice.click("#hangup");
    bob.until("bob's call ended", || status(&bob) == "Call ended");
    alice.until("alice's call ended", || status(&alice) == "Call ended");
    // The operator's status page shows the bindings and their history as WSS. (SIP.js
    // unregisters a page that is left, as alice's is for this one, when it has the time.)
    alice.go(&format!("{api}/"));
    alice.until("the status page", || {
        alice
            .texts("#registrations tbody td.alias")
            .contains(&"bob@example.com".to_owned())
    });
    for cells in [
        "#registrations tbody td.transport",
        "#history tbody td.transport",
    ] {
        let protos = alice.texts(cells);
        assert!(
            !protos.is_empty() && protos.iter().all(|p| p == "WSS"),
            "{cells}: {protos:?}"
        );
    }
}
