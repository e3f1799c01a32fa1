//! `alias-directory`: the device aliases a provisioning system writes into a file, each
//! with the transports it may register over and the HA1 of its user; re-read when the
//! file changes (checked at most every `check_interval_ms`).
//!
//! ```toml
//! [[hooks]]
//! type = "plugin"
//! path = "../target/release/libalias_directory.so"
//! config = { file = "directory.csv", unknown_alias = "forbidden", check_interval_ms = 1000 }
//! ```
//!
//! The file, one alias per line, `#` starts a comment:
//!
//! ```text
//! alias,transports,username,ha1
//! alice@example.com,udp tcp,alice,<hex MD5(alice:realm:password) or SHA-256>
//! ```
//!
//! Same answers as sipreg's built-in `[[aliases]]`: unknown alias 403 (or 404, or a
//! challenge that never succeeds), a user may register only their own aliases (403),
//! a transport not enabled for the alias 403; refusals logged with Pexip's reasons.
//! A call (any request the proxy routes) to an unknown alias of a directory domain gets
//! 404 "Alias not found"; a listed one is left to the location service (480 when it has
//! no binding).

use arc_swap::ArcSwap;
use plugin_api::{
    Auth, AuthDecision, Bind, Decision, Host, Level, Plugin, Reply, Request, RouteDecision, Secret,
    declare_plugin,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    file: PathBuf,
    #[serde(default = "forbidden")]
    unknown_alias: String,
    #[serde(default = "second")]
    check_interval_ms: u64,
}

fn forbidden() -> String {
    "forbidden".into()
}

fn second() -> u64 {
    1000
}

#[derive(Debug)]
struct Entry {
    transports: Vec<String>,
    username: String,
}

/// One reading of the file.
#[derive(Debug, Default)]
struct Directory {
    aliases: HashMap<String, Entry>,
    /// HA1 by user name.
    ha1: HashMap<String, String>,
    modified: Option<SystemTime>,
}

fn parse(text: &str, file: &str) -> Result<Directory, String> {
    let mut d = Directory::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [alias, transports, username, ha1] = fields[..] else {
            return Err(format!(
                "{file}:{}: not `alias,transports,username,ha1`",
                n + 1
            ));
        };
        if !(ha1.len() == 32 || ha1.len() == 64) || !ha1.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{file}:{}: HA1 must be 32 or 64 hex digits", n + 1));
        }
        if let Some(other) = d.ha1.insert(username.to_owned(), ha1.to_ascii_lowercase())
            && other != ha1.to_ascii_lowercase()
        {
            return Err(format!("{file}:{}: user {username} has two HA1s", n + 1));
        }
        d.aliases.insert(
            alias.to_ascii_lowercase(),
            Entry {
                transports: transports
                    .split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect(),
                username: username.to_owned(),
            },
        );
    }
    Ok(d)
}

/// The plugin.
#[derive(Debug)]
pub struct AliasDirectory {
    host: Host,
    config: Config,
    path: PathBuf,
    directory: ArcSwap<Directory>,
    started: Instant,
    /// Milliseconds since `started` of the last look at the file.
    checked_ms: AtomicU64,
}

impl AliasDirectory {
    fn read(&self) -> Result<Directory, String> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut d = parse(&text, &self.path.display().to_string())?;
        d.modified = modified;
        Ok(d)
    }

    /// Re-reads the file when it changed (looked at most every `check_interval_ms`).
    fn refresh(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.config.check_interval_ms
            || self
                .checked_ms
                .compare_exchange(
                    last,
                    now.max(last + 1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified == self.directory.load().modified {
            return;
        }
        match self.read() {
            Ok(d) => {
                let n = d.aliases.len().to_string();
                self.directory.store(Arc::new(d));
                self.host
                    .log(Level::Info, "directory reloaded", &[("aliases", &n)]);
            }
            Err(e) => self.host.log(
                Level::Error,
                "directory refused; the previous one stays",
                &[("error", &e)],
            ),
        }
    }

    fn refused(&self, alias: &str, reason: &str, more: &[(&str, &str)]) {
        let mut fields = vec![("Alias", alias), ("Reason", reason)];
        fields.extend_from_slice(more);
        self.host.log(Level::Info, "Registration refused", &fields);
    }
}

impl Plugin for AliasDirectory {
    const NAME: &'static str = "alias-directory";

    fn create(config: &str, host: Host) -> Result<Self, String> {
        let config: Config =
            toml::from_str(config).map_err(|e| format!("config: {}", e.message()))?;
        if !["forbidden", "not-found", "challenge"].contains(&config.unknown_alias.as_str()) {
            return Err(format!(
                "config: unknown_alias \"{}\" is not forbidden, not-found or challenge",
                config.unknown_alias
            ));
        }
        let path = host.config_dir().join(&config.file);
        let plugin = AliasDirectory {
            host,
            config,
            path,
            directory: ArcSwap::from_pointee(Directory::default()),
            started: Instant::now(),
            checked_ms: AtomicU64::new(0),
        };
        let d = plugin.read()?;
        let n = d.aliases.len().to_string();
        plugin.directory.store(Arc::new(d));
        host.log(
            Level::Info,
            "directory loaded",
            &[
                ("aliases", &n),
                ("file", &plugin.path.display().to_string()),
            ],
        );
        Ok(plugin)
    }

    fn authenticate(&self, _req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        self.refresh();
        let d = self.directory.load();
        let Some(entry) = d.aliases.get(auth.aor) else {
            self.refused(auth.aor, "Alias not found", &[]);
            return match self.config.unknown_alias.as_str() {
                "not-found" => AuthDecision::Respond(Reply::new(404)),
                "challenge" => AuthDecision::Challenge,
                _ => AuthDecision::Respond(Reply::new(403)),
            };
        };
        let Some(user) = auth.username else {
            return AuthDecision::Challenge;
        };
        match d.ha1.get(user) {
            Some(ha1) => AuthDecision::Credentials {
                username: user.to_owned(),
                secret: Secret::Ha1(ha1.clone()),
            },
            None => {
                self.refused(
                    auth.aor,
                    "Invalid credentials",
                    &[
                        ("Expected-username", &entry.username),
                        ("Supplied-username", user),
                    ],
                );
                AuthDecision::Challenge
            }
        }
    }

    fn bind(&self, req: &Request<'_>, bind: &mut Bind<'_>) -> Decision {
        let d = self.directory.load();
        let Some(entry) = d.aliases.get(bind.aor) else {
            return Decision::Respond(Reply::new(403));
        };
        if let Some(id) = bind.identity
            && id != entry.username
        {
            self.refused(
                bind.aor,
                "Invalid credentials",
                &[
                    ("Expected-username", &entry.username),
                    ("Supplied-username", id),
                ],
            );
            return Decision::Respond(Reply::new(403));
        }
        let transport = req.transport().as_str();
        if !entry.transports.iter().any(|t| t == transport) {
            self.refused(
                bind.aor,
                "Protocol not enabled for alias",
                &[("Protocol", transport)],
            );
            return Decision::Respond(Reply::with_reason(
                403,
                format!("Forbidden ({transport} not enabled for alias)"),
            ));
        }
        Decision::Accept
    }

    fn route(&self, req: &Request<'_>) -> RouteDecision {
        self.refresh();
        let uri = req.request_uri();
        let Some((user, host)) = uri
            .strip_prefix("sip:")
            .and_then(|rest| rest.split([';', '?', '>']).next())
            .and_then(|addr| addr.split_once('@'))
        else {
            return RouteDecision::Pass;
        };
        let host = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        let d = self.directory.load();
        let ours = d.aliases.keys().any(|a| a.ends_with(&format!("@{host}")));
        let alias = format!("{user}@{host}");
        if !ours || d.aliases.contains_key(&alias) {
            return RouteDecision::Pass;
        }
        self.host.log(
            Level::Info,
            "Request not routed",
            &[("Alias", &alias), ("Reason", "Alias not found")],
        );
        RouteDecision::Respond(Reply::new(404))
    }
}

declare_plugin!(AliasDirectory);

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn file_lines_and_errors() {
        let d = parse(
            "# comment\nAlice@Example.com, udp tcp, alice, 0123456789abcdef0123456789ABCDEF\n\n",
            "f",
        )
        .unwrap();
        let e = &d.aliases["alice@example.com"];
        assert_eq!(e.transports, vec!["udp", "tcp"]);
        assert_eq!(d.ha1["alice"], "0123456789abcdef0123456789abcdef");
        assert_eq!(
            parse("a@b,udp,a\n", "f").unwrap_err(),
            "f:1: not `alias,transports,username,ha1`"
        );
        assert!(parse("a@b,udp,a,xyz\n", "f").unwrap_err().contains("HA1"));
    }
}
