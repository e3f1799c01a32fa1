//! The status page in a real browser: headless Chromium driven through ChromeDriver (the
//! W3C WebDriver protocol, spoken here over HTTP), against a server SIPp registers to. The
//! page must show the registrations and the history, update itself as devices come, filter
//! as the operator types, and show maintenance; a screenshot is kept for a look by eye.

use crate::admin::{base, http, server, sipp_registers};
use crate::sippkit::free_udp_port;
use serde_json::{Value, json};
use sipreg::config::Transport;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver with one headless Chromium session; both end when dropped.
struct Browser {
    driver: Child,
    url: String,
    agent: ureq::Agent,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = free_udp_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run chromedriver ({e}): install it with the README's test command (packages chromium, chromium-driver)")
            });
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut b = Browser {
            driver,
            url: format!("http://127.0.0.1:{port}"),
            agent,
            profile: tempfile::tempdir().unwrap(),
        };
        b.until("chromedriver ready", || {
            b.agent
                .get(format!("{}/status", b.url))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true)
        });
        let profile = format!("--user-data-dir={}", b.profile.path().display());
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--window-size=1280,800", profile]
            }
        }}});
        let session = b.send("POST", "/session", Some(caps));
        let id = session["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"))
            .to_owned();
        b.url = format!("{}/session/{id}", b.url);
        b
    }

    /// One WebDriver command; its `value`.
    fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let answer = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self
                .agent
                .post(&url)
                .send_json(body.unwrap_or_else(|| json!({}))),
        };
        let v: Value = answer
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
            .body_mut()
            .read_json()
            .unwrap();
        v.get("value").cloned().unwrap_or(v)
    }

    fn until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn go(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    /// The text of every element `css` selects.
    fn texts(&self, css: &str) -> Vec<String> {
        let found = self.send(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        );
        found
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let id = e[ELEMENT].as_str().unwrap();
                self.send("GET", &format!("/element/{id}/text"), None)
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.send(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        let id = e[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no {css}: {e}"));
        self.send(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// A PNG of the window (WebDriver sends it in base64).
    fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let text = self.send("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(text.as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn the_status_page_shows_updates_and_filters_in_chromium() {
    let s = server("token = \"page-token\"");
    let api = base(s.running.admin.unwrap());
    let udp = s.running.addr(Transport::Udp).unwrap();
    let tcp = s.running.addr(Transport::Tcp).unwrap();
    sipp_registers(udp, Transport::Udp, "alice", "wonderland", 300, 200);

    let b = Browser::start();
    // The token in the fragment: the page sends it, the server never sees it in a URL.
    b.go(&format!("{api}/#token=page-token"));
    b.until("alice listed", || {
        b.texts("#registrations tbody td.alias") == ["alice@127.0.0.1"]
    });
    assert_eq!(b.texts("#registrations tbody td.transport"), ["UDP"]);
    assert_eq!(b.texts("#registrations tbody td.reach"), ["UNKNOWN"]);
    assert!(b.texts("#maintenance")[0].contains("maintenance off"));

    // Devices that come later appear without a reload, refusals in the history.
    sipp_registers(tcp, Transport::Tcp, "bob", "builder", 300, 200);
    sipp_registers(udp, Transport::Udp, "bob", "wrong", 300, 401);
    b.until("bob listed", || {
        b.texts("#registrations tbody td.alias").len() == 2
    });
    b.until("the refusal in the history", || {
        b.texts("#history tbody tr.refused td.reason") == ["Invalid credentials"]
    });
    assert_eq!(b.texts("#history tbody tr.refused td.code"), ["401"]);
    assert!(
        b.texts("#history tbody tr.added td.alias")
            .contains(&"bob@127.0.0.1".to_owned())
    );

    // The operator types a filter.
    b.type_into("#filter-alias", "bob");
    b.until("only bob", || {
        b.texts("#registrations tbody td.alias") == ["bob@127.0.0.1"]
    });
    assert_eq!(b.texts("#registrations tbody td.transport"), ["TCP"]);

    // Maintenance shows.
    let (code, _) = http(
        "PUT",
        &format!("{api}/api/maintenance"),
        Some("page-token"),
        Some(r#"{"maintenance": true}"#),
    );
    assert_eq!(code, 200);
    b.until("maintenance shown", || {
        b.texts("#maintenance")[0].contains("MAINTENANCE")
    });

    let png = b.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert!(width >= 800, "{width}");
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&kept, &png).unwrap();
}
