//! The checks of a parsed configuration that concern more than one value, or a value
//! serde cannot judge alone; each problem names the key it is about.

use super::{Challenge, Config};

/// The longest `[store] commit_delay_ms` allowed.
const MAX_COMMIT_DELAY_MS: u64 = 1000;

/// One step of a key's path: a table key or an array index.
#[derive(Debug, Clone, Copy)]
pub(super) enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

/// A value the checks refuse, with its place in the file.
pub(super) struct Problem {
    pub path: Vec<PathPart<'static>>,
    pub key: String,
    pub message: String,
}

pub(super) fn problem(path: Vec<PathPart<'static>>, message: impl Into<String>) -> Problem {
    let mut key = String::new();
    for p in &path {
        match p {
            PathPart::Key(k) => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            PathPart::Index(i) => key.push_str(&format!("[{i}]")),
        }
    }
    Problem {
        path,
        key,
        message: message.into(),
    }
}

/// The checks that concern more than one value.
pub(super) fn check(c: &Config) -> Vec<Problem> {
    use PathPart::{Index, Key};
    let mut out = Vec::new();
    if c.server.listen.is_empty() {
        out.push(problem(
            vec![Key("server"), Key("listen")],
            "at least one listen address is needed",
        ));
    }
    let unspecified = c
        .server
        .listen
        .iter()
        .position(|l| l.addr.ip().is_unspecified());
    if let Some(i) = unspecified
        && c.server.advertise.is_none()
        && c.proxy.mode == super::ProxyMode::Proxy
    {
        out.push(problem(
            vec![Key("server"), Key("listen"), Index(i)],
            "a wildcard address needs `server.advertise`, the address peers reach this server at (written into Via and Record-Route)",
        ));
    }
    if let Some(a) = &c.server.advertise
        && crate::sip::via::split_host_port(a).is_none_or(|(_, port)| port.is_some())
    {
        out.push(problem(
            vec![Key("server"), Key("advertise")],
            format!("\"{a}\" is not a host name or IP address (without a port)"),
        ));
    }
    for (i, d) in c.server.domains.iter().enumerate() {
        if crate::sip::via::split_host_port(d).is_none_or(|(_, port)| port.is_some()) {
            out.push(problem(
                vec![Key("server"), Key("domains"), Index(i)],
                format!("\"{d}\" is not a domain name or IP address"),
            ));
        }
    }
    let r = &c.registrar;
    if r.min_expires > r.max_expires {
        out.push(problem(
            vec![Key("registrar"), Key("min_expires")],
            format!(
                "min_expires ({}) is above max_expires ({})",
                r.min_expires, r.max_expires
            ),
        ));
    }
    if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
        out.push(problem(
            vec![Key("registrar"), Key("default_expires")],
            format!(
                "default_expires ({}) is outside min_expires..max_expires ({}..{})",
                r.default_expires, r.min_expires, r.max_expires
            ),
        ));
    }
    // Counts and times that 0 would turn off by accident.
    let positive = [
        ("registrar", "max_contacts", r.max_contacts as u64, ""),
        ("qualify", "failures", u64::from(c.qualify.failures), ""),
        ("qualify", "timeout_ms", c.qualify.timeout_ms, ""),
        ("store", "timeout_ms", c.store.timeout_ms, ""),
        ("auth", "nonce_ttl", c.auth.nonce_ttl, " second"),
        (
            "server",
            "tcp_first_byte_timeout",
            c.server.tcp_first_byte_timeout,
            " second",
        ),
        (
            "server",
            "tcp_message_timeout",
            c.server.tcp_message_timeout,
            " second",
        ),
        (
            "server",
            "tcp_max_per_source",
            c.server.tcp_max_per_source as u64,
            "",
        ),
        (
            "server",
            "tcp_max_connections",
            c.server.tcp_max_connections.map_or(1, |n| n as u64),
            "",
        ),
    ];
    for (table, key, value, unit) in positive {
        if value == 0 {
            let message = format!("{key} must be at least 1{unit}");
            out.push(problem(vec![Key(table), Key(key)], message));
        }
    }
    for (i, l) in c.server.listen.iter().enumerate() {
        if l.transport.is_secure() && c.tls.is_none() {
            out.push(problem(
                vec![Key("server"), Key("listen"), Index(i)],
                format!(
                    "a {} listener needs a [tls] table with `cert` and `key` (`sipreg cert --self-signed` makes a pair to try it)",
                    l.transport
                ),
            ));
        }
    }
    if let Some(tls) = &c.tls {
        if tls.verify_client != super::VerifyClient::Off && tls.ca.is_none() {
            out.push(problem(
                vec![Key("tls"), Key("verify_client")],
                "verifying client certificates needs `tls.ca`, the anchors they are verified against",
            ));
        }
        if tls.handshake_timeout == 0 {
            out.push(problem(
                vec![Key("tls"), Key("handshake_timeout")],
                "handshake_timeout must be at least 1 second",
            ));
        }
    }
    if c.websocket.upgrade_timeout == 0 {
        out.push(problem(
            vec![Key("websocket"), Key("upgrade_timeout")],
            "upgrade_timeout must be at least 1 second",
        ));
    }
    for (i, o) in c.websocket.origins.iter().enumerate() {
        if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
            out.push(problem(
                vec![Key("websocket"), Key("origins"), Index(i)],
                format!("\"{o}\" is not an origin (scheme://host[:port], no path), as a browser sends it"),
            ));
        }
    }
    let g = &c.auth.guard;
    if g.enabled {
        for (key, value) in [
            ("failures", u64::from(g.failures)),
            ("window", g.window),
            ("ban", g.ban),
        ] {
            if value == 0 {
                out.push(problem(
                    vec![Key("auth"), Key("guard"), Key(key)],
                    format!("{key} must be at least 1 (enabled = false turns the guard off)"),
                ));
            }
        }
    }
    let auth_on = c.auth.challenge != Challenge::Off;
    let store = &c.store;
    if store.kind == super::StoreKind::Redis {
        match &store.url {
            None => out.push(problem(
                vec![Key("store"), Key("type")],
                "a redis store needs `store.url` (redis://host:port/db)",
            )),
            Some(u) => {
                if let Err(e) = redis::Client::open(u.as_str()) {
                    out.push(problem(
                        vec![Key("store"), Key("url")],
                        format!("\"{u}\" is not a Redis URL: {e}"),
                    ));
                }
            }
        }
        if auth_on && c.auth.nonce_secret.is_none() {
            out.push(problem(
                vec![Key("store"), Key("type")],
                "nodes sharing a redis store must share `auth.nonce_secret`, or a nonce from one node fails on another",
            ));
        }
    }
    if let Some(admin) = &c.admin {
        if !admin.listen.ip().is_loopback() && admin.token.is_none() {
            out.push(problem(
                vec![Key("admin"), Key("listen")],
                format!(
                    "an admin listener on {} (not loopback) needs `admin.token`",
                    admin.listen
                ),
            ));
        }
        if admin.token.as_deref() == Some("") {
            out.push(problem(
                vec![Key("admin"), Key("token")],
                "an empty token protects nothing; remove it or set one",
            ));
        }
    }
    if store.commit_delay_ms > MAX_COMMIT_DELAY_MS {
        out.push(problem(
            vec![Key("store"), Key("commit_delay_ms")],
            format!("commit_delay_ms is at most {MAX_COMMIT_DELAY_MS}: every 200 waits that long"),
        ));
    }
    if auth_on && c.auth.realm.is_none() && c.server.domains.is_empty() {
        out.push(problem(
            vec![Key("auth"), Key("realm")],
            "a realm is needed when no [server] domains are listed",
        ));
    }
    for (i, h) in c.hooks.iter().enumerate() {
        let at = |k: &'static str| vec![Key("hooks"), Index(i), Key(k)];
        let (key, other) = match h.kind {
            super::HookKind::Lua => ("script", h.path.is_some().then_some("path")),
            super::HookKind::Plugin => ("path", h.script.is_some().then_some("script")),
        };
        let given = match h.kind {
            super::HookKind::Lua => h.script.is_some(),
            super::HookKind::Plugin => h.path.is_some(),
        };
        if let Some(other) = other {
            out.push(problem(
                at(other),
                format!("`{other}` does not belong to this type of hook; give `{key}`"),
            ));
        } else if !given {
            out.push(problem(
                vec![Key("hooks"), Index(i), Key("type")],
                format!("this type of hook needs `{key}`"),
            ));
        } else {
            let path = h.file(&c.base_dir);
            if !path.is_file() {
                out.push(problem(
                    at(key),
                    format!("{} is not a readable file", path.display()),
                ));
            }
        }
        if h.memory_limit_mib == 0 {
            out.push(problem(at("memory_limit_mib"), "must be at least 1"));
        }
        if h.instruction_budget < 1000 {
            out.push(problem(
                at("instruction_budget"),
                "must be at least 1000 instructions",
            ));
        }
        if h.time_limit_ms == 0 {
            out.push(problem(at("time_limit_ms"), "must be at least 1 ms"));
        }
        for (j, prefix) in h.allow_http.iter().enumerate() {
            let url = reqwest::Url::parse(prefix);
            if !url.is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host()) {
                out.push(problem(
                    vec![Key("hooks"), Index(i), Key("allow_http"), Index(j)],
                    format!("\"{prefix}\" is not an http:// or https:// URL with a host"),
                ));
            }
        }
        if h.http_max_connections == 0 {
            out.push(problem(at("http_max_connections"), "must be at least 1"));
        }
    }
    let mut seen_alias = std::collections::HashMap::new();
    let mut secrets: std::collections::HashMap<String, (Option<&str>, Option<&str>)> =
        std::collections::HashMap::new();
    for (i, a) in c.aliases.iter().enumerate() {
        let at = |k: &'static str| vec![Key("aliases"), Index(i), Key(k)];
        let Some((user, host)) = super::split_alias(&a.alias) else {
            out.push(problem(
                at("alias"),
                format!("\"{}\" is not user@domain", a.alias),
            ));
            continue;
        };
        let key = format!("{user}@{}", host.to_ascii_lowercase());
        if seen_alias.insert(key.clone(), i).is_some() {
            out.push(problem(
                at("alias"),
                format!("alias \"{}\" is listed twice", a.alias),
            ));
        }
        if !c.server.domains.is_empty()
            && !c
                .server
                .domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(host))
        {
            out.push(problem(
                at("alias"),
                format!("domain \"{host}\" is not in [server] domains"),
            ));
        }
        if a.password.is_some() && a.ha1.is_some() {
            out.push(problem(at("ha1"), "give password or ha1, not both"));
        }
        if auth_on && a.password.is_none() && a.ha1.is_none() {
            out.push(problem(
                at("alias"),
                "authentication is on: give password or ha1",
            ));
        }
        if a.ha1_algorithm.is_some() && a.ha1.is_none() {
            out.push(problem(
                at("ha1_algorithm"),
                "ha1_algorithm says what ha1 was computed with: give ha1 too",
            ));
        } else if let Some(name) = &a.ha1_algorithm
            && crate::sip::digest::Algorithm::from_token(name).is_none()
        {
            out.push(problem(
                at("ha1_algorithm"),
                format!(
                    "unknown algorithm \"{name}\", expected \"SHA-512-256\", \"SHA-256\" or \"MD5\""
                ),
            ));
        } else if let Some(h) = &a.ha1 {
            use crate::sip::digest::Algorithm;
            let alg = a.ha1_algorithm();
            let digits = match alg {
                Some(Algorithm::Md5) => 32,
                _ => 64,
            };
            if alg.is_none() || h.len() != digits || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                out.push(problem(
                    at("ha1"),
                    "ha1 must be 32 (MD5) or 64 (SHA-256, SHA-512-256 with ha1_algorithm) hex digits",
                ));
            } else if let Some(alg) = alg
                && !a
                    .algorithms
                    .as_ref()
                    .unwrap_or(&c.auth.algorithms)
                    .contains(&alg)
            {
                let list = if a.algorithms.is_some() {
                    "the alias's algorithms do"
                } else {
                    "auth.algorithms does"
                };
                out.push(problem(
                    at("ha1"),
                    format!("ha1 is for {alg}, which {list} not list"),
                ));
            }
        }
        if a.transports.as_ref().is_some_and(|t| t.is_empty()) {
            out.push(problem(
                at("transports"),
                "an empty list lets the alias register nowhere; omit it for all",
            ));
        }
        if a.max_contacts == Some(0) {
            out.push(problem(at("max_contacts"), "must be at least 1"));
        }
        let min = a.min_expires.unwrap_or(c.registrar.min_expires);
        let max = a.max_expires.unwrap_or(c.registrar.max_expires);
        if min > max {
            let key = if a.min_expires.is_some() {
                "min_expires"
            } else {
                "max_expires"
            };
            out.push(problem(
                at(key),
                format!("min_expires {min} is above max_expires {max} for this alias"),
            ));
        }
        for (name, value) in &a.reply_headers {
            if let Err(e) = crate::hooks::policy::header(200, name, value) {
                out.push(problem(at("reply_headers"), e));
            }
        }
        let username = a.username.clone().unwrap_or_else(|| user.to_owned());
        let secret = (a.password.as_deref(), a.ha1.as_deref());
        if let Some(prev) = secrets.insert(username.clone(), secret)
            && prev != secret
        {
            out.push(problem(
                at("username"),
                format!("user name \"{username}\" is used by another alias with other credentials"),
            ));
        }
    }
    out
}
