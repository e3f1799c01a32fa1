//! Headless Chromium driven through ChromeDriver (the W3C WebDriver protocol, spoken
//! here over HTTP): the status page's test and the WebRTC demo's.

use crate::sippkit::free_udp_port;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A ChromeDriver with one headless Chromium session; both end when dropped.
pub struct Browser {
    driver: Child,
    url: String,
    agent: ureq::Agent,
    profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
        Browser::with_args(&[])
    }

    /// A session with more Chromium flags.
    pub fn with_args(extra: &[&str]) -> Browser {
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
        let mut args = vec![
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,800",
            &profile,
        ];
        args.extend_from_slice(extra);
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
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
    pub fn send(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ok() {
            assert!(Instant::now() < deadline, "never: {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn go(&self, url: &str) {
        self.send("POST", "/url", Some(json!({ "url": url })));
    }

    /// The text of every element `css` selects.
    pub fn texts(&self, css: &str) -> Vec<String> {
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

    /// The reference of the element `css` selects.
    fn element(&self, css: &str) -> String {
        let e = self.send(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        e[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no {css}: {e}"))
            .to_owned()
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css);
        self.send(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element `css` selects.
    pub fn click(&self, css: &str) {
        let id = self.element(css);
        self.send("POST", &format!("/element/{id}/click"), Some(json!({})));
    }

    /// A PNG of the window (WebDriver sends it in base64).
    pub fn screenshot(&self) -> Vec<u8> {
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
