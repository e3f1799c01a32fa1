//! `audit-log`: what a plugin sees of registrations, as JSON lines in a file that is
//! rotated by size (`audit.jsonl` -> `audit.jsonl.1` -> ... up to `keep` old files).
//!
//! ```toml
//! [[hooks]]
//! type = "plugin"
//! path = "../target/release/libaudit_log.so"
//! config = { file = "audit.jsonl", max_bytes = 10485760, keep = 5 }
//! ```
//!
//! Events, one JSON object per line, each with `time` (ms since the epoch) and `event`:
//! - `request`: every request (method, from, to, call_id, source, transport, and on a
//!   TLS or WSS connection with a verified client certificate `tls_subject` and
//!   `tls_sans`);
//! - `authenticate`: a REGISTER asks to be authenticated (aor, the user name it carries);
//! - `binding`: a REGISTER passed authentication and authorization up to this plugin and
//!   is about to change a binding (aor, contact, registration_id, expires, new, identity);
//! - `removed`: a binding went away (reason `expired`, `unregistered`, `evicted`).
//!
//! A plugin sees the hooks, not the replies: a refusal shows as a `request` (and maybe an
//! `authenticate`) with no `binding` for its Call-ID; the reason is in sipreg's own log.
//!
//! Put it first among the hooks, so it sees every request.

use plugin_api::{
    Auth, AuthDecision, Bind, Decision, Expire, ExpireReason, Host, Level, Plugin, Request,
    declare_plugin,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    file: PathBuf,
    #[serde(default = "ten_mib")]
    max_bytes: u64,
    #[serde(default = "five")]
    keep: u32,
}

fn ten_mib() -> u64 {
    10 << 20
}

fn five() -> u32 {
    5
}

#[derive(Debug)]
struct Writer {
    file: File,
    size: u64,
}

/// The plugin.
#[derive(Debug)]
pub struct AuditLog {
    host: Host,
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    writer: Mutex<Writer>,
}

fn open(path: &Path) -> std::io::Result<Writer> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok(Writer { file, size })
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl AuditLog {
    fn write(&self, mut event: Value, now_ms: u64) {
        event["time"] = json!(now_ms);
        let mut line = event.to_string();
        line.push('\n');
        let Ok(mut w) = self.writer.lock() else {
            return;
        };
        if w.size > 0 && w.size + line.len() as u64 > self.max_bytes {
            // rotate: file.(keep-1) -> file.keep, ..., file -> file.1
            for n in (1..self.keep).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            if self.keep > 0 {
                let _ = std::fs::rename(&self.path, rotated(&self.path, 1));
            } else {
                let _ = std::fs::remove_file(&self.path);
            }
            match open(&self.path) {
                Ok(fresh) => *w = fresh,
                Err(e) => {
                    self.host.log(
                        Level::Error,
                        "audit file cannot be reopened",
                        &[("error", &e.to_string())],
                    );
                    return;
                }
            }
        }
        match w.file.write_all(line.as_bytes()) {
            Ok(()) => w.size += line.len() as u64,
            Err(e) => self.host.log(
                Level::Error,
                "audit line not written",
                &[("error", &e.to_string())],
            ),
        }
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Plugin for AuditLog {
    const NAME: &'static str = "audit-log";

    fn create(config: &str, host: Host) -> Result<Self, String> {
        let config: Config =
            toml::from_str(config).map_err(|e| format!("config: {}", e.message()))?;
        if config.max_bytes < 1024 {
            return Err("config: max_bytes must be at least 1024".into());
        }
        let path = host.config_dir().join(&config.file);
        let writer = open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(AuditLog {
            host,
            path,
            max_bytes: config.max_bytes,
            keep: config.keep,
            writer: Mutex::new(writer),
        })
    }

    fn on_request(&self, req: &Request<'_>) -> Decision {
        let (ip, port) = req.source();
        let mut event = json!({
            "event": "request",
            "method": req.method(),
            "from": req.header("From"),
            "to": req.header("To"),
            "call_id": req.header("Call-ID"),
            "source": format!("{ip}:{port}"),
            "transport": req.transport().as_str(),
        });
        if let Some(cert) = req.client_cert() {
            event["tls_subject"] = json!(cert.subject);
            event["tls_sans"] = json!(cert.sans().collect::<Vec<_>>());
        }
        self.write(event, req.now_ms());
        Decision::Continue
    }

    fn authenticate(&self, req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        self.write(
            json!({ "event": "authenticate", "aor": auth.aor, "username": auth.username, "call_id": req.header("Call-ID") }),
            req.now_ms(),
        );
        AuthDecision::Pass
    }

    fn bind(&self, req: &Request<'_>, bind: &mut Bind<'_>) -> Decision {
        for b in &bind.bindings {
            self.write(
                json!({
                    "event": "binding",
                    "aor": bind.aor,
                    "contact": b.contact(),
                    "registration_id": b.registration_id(),
                    "expires": b.expires(),
                    "new": b.is_new(),
                    "identity": bind.identity,
                    "call_id": req.header("Call-ID"),
                }),
                req.now_ms(),
            );
        }
        Decision::Continue
    }

    fn expire(&self, event: &Expire<'_>) {
        let reason = match event.reason {
            ExpireReason::Expired => "expired",
            ExpireReason::Unregistered => "unregistered",
            ExpireReason::Evicted => "evicted",
            ExpireReason::Unreachable => "unreachable",
            ExpireReason::Administrative => "administrative",
        };
        self.write(
            json!({
                "event": "removed",
                "aor": event.aor,
                "contact": event.contact,
                "registration_id": event.registration_id,
                "reason": reason,
                "source": event.source,
            }),
            now(),
        );
    }
}

declare_plugin!(AuditLog);
