//! Reading and checking a configuration file. Every error names the file, the line and the
//! key, whether TOML, serde or a later check found it.

use super::Config;
use super::check::{PathPart, check};
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The configuration `sipreg run` uses without `--config`: UDP and TCP on 127.0.0.1:5060,
/// any domain, open registration.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// A configuration error, printed as `file:line:column: key: message`; with the others
/// the checks found in the same file, in file order, one a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The dotted key (`registrar.min_expires`, `aliases[2].ha1`), when one applies.
    pub key: Option<String>,
    pub message: String,
    /// The file's other errors, after this one in file order.
    pub more: Vec<ConfigError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        f.write_str(&self.message)?;
        for e in &self.more {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

/// The dotted key a duplicate-key error is about: the table it stands in (the last
/// header above it) and the key's own text.
fn duplicate_key(text: &str, span: Range<usize>) -> Option<String> {
    let key = text.get(span.clone())?.trim().trim_matches('"');
    let table = text[..span.start.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(t) if !t.is_empty() && !key.starts_with('[') => format!("{t}.{key}"),
        _ => key.trim_matches(|c| c == '[' || c == ']').to_owned(),
    })
}

impl std::error::Error for ConfigError {}

/// Reads and checks a configuration file.
///
/// # Errors
/// A [`ConfigError`] for an unreadable file, bad TOML, an unknown key or a bad value.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        key: None,
        message: format!("cannot read: {e}"),
        more: Vec::new(),
    })?;
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    parse_in(&text, &path.display().to_string(), base_dir)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, column)
}

/// The dotted path of the key whose key or value span is the smallest one containing
/// `offset` (tables opened by a `[header]` have spans that do not cover their entries, so the
/// whole tree is searched rather than only the spans that contain the offset).
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<String> {
    fn walk(table: &DeTable<'_>, prefix: &str, offset: usize, best: &mut Option<(usize, String)>) {
        for (k, v) in table.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            visit(v, path, k.span(), offset, best);
        }
    }
    fn visit(
        v: &Spanned<DeValue<'_>>,
        path: String,
        key_span: Range<usize>,
        offset: usize,
        best: &mut Option<(usize, String)>,
    ) {
        for span in [key_span, v.span()] {
            if span.contains(&offset) && best.as_ref().is_none_or(|(len, _)| span.len() <= *len) {
                *best = Some((span.len(), path.clone()));
            }
        }
        match v.get_ref() {
            DeValue::Table(t) => walk(t, &path, offset, best),
            DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    visit(item, format!("{path}[{i}]"), item.span(), offset, best);
                }
            }
            _ => {}
        }
    }
    let mut best = None;
    walk(table, "", offset, &mut best);
    best.map(|(_, path)| path)
}

/// The span of the key at a path of keys and indices, or of the nearest parent present.
fn span_of(table: &Spanned<DeTable<'_>>, path: &[PathPart<'_>]) -> Range<usize> {
    let mut span = 0..0;
    let mut node: Option<&DeTable<'_>> = Some(table.get_ref());
    let mut array: Option<&[Spanned<DeValue<'_>>]> = None;
    for part in path {
        let next = match (part, node, array) {
            (PathPart::Key(k), Some(t), _) => {
                t.iter()
                    .find(|(key, _)| key.get_ref() == k)
                    .map(|(key, v)| {
                        span = key.span();
                        v
                    })
            }
            (PathPart::Index(i), _, Some(a)) => a.get(*i).inspect(|v| span = v.span()),
            _ => None,
        };
        let Some(v) = next else { break };
        (node, array) = match v.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(&a[..])),
            _ => (None, None),
        };
    }
    span
}

/// Parses and checks configuration text; `file` names it in errors, and relative paths
/// in it are resolved against the working directory.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
    parse_in(text, file, PathBuf::from("."))
}

/// [`parse`], with relative paths resolved against `base_dir`.
///
/// # Errors
/// A [`ConfigError`] naming file, line and key.
pub fn parse_in(text: &str, file: &str, base_dir: PathBuf) -> Result<Config, ConfigError> {
    // The span tree is only built when an error needs a line and a key: a large alias list
    // is then parsed once.
    let spans = || {
        DeTable::parse(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            let message = e.message().trim().to_owned();
            let key = e
                .span()
                .filter(|_| message.contains("duplicate key"))
                .and_then(|s| duplicate_key(text, s));
            ConfigError {
                file: file.to_owned(),
                line,
                column,
                key,
                message,
                more: Vec::new(),
            }
        })
    };
    let mut config: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            let doc = spans()?;
            let offset = e.span().map_or(0, |s| s.start);
            let (line, column) = line_col(text, offset);
            let mut message = e.message().trim().to_owned();
            if message.starts_with("missing field") && offset == 0 {
                message.push_str(" (in the top level)");
            }
            return Err(ConfigError {
                file: file.to_owned(),
                line,
                column,
                key: key_at(doc.get_ref(), offset),
                message,
                more: Vec::new(),
            });
        }
    };
    config.base_dir = base_dir;
    let problems = check(&config);
    if problems.is_empty() && config.hooks.is_empty() && config.tls.is_none() {
        return Ok(config);
    }
    let doc = spans()?;
    let at = |path: &[PathPart<'_>]| line_col(text, span_of(&doc, path).start);
    let mut errors: Vec<ConfigError> = problems
        .into_iter()
        .map(|p| {
            let (line, column) = at(&p.path);
            ConfigError {
                file: file.to_owned(),
                line,
                column,
                key: Some(p.key),
                message: p.message,
                more: Vec::new(),
            }
        })
        .collect();
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line, e.column));
        let mut first = errors.remove(0);
        first.more = errors;
        return Err(first);
    }
    // Where each hook is written, for the errors of its loading (a plugin that is no
    // library names the file, the line and the key).
    for (i, h) in config.hooks.iter_mut().enumerate() {
        let key = match h.kind {
            super::HookKind::Lua => "script",
            super::HookKind::Plugin => "path",
        };
        let (line, column) = at(&[
            PathPart::Key("hooks"),
            PathPart::Index(i),
            PathPart::Key(key),
        ]);
        h.origin = format!("{file}:{line}:{column}: key `hooks[{i}].{key}`");
    }
    if let Some(tls) = &mut config.tls {
        let origin = |path: &[PathPart<'_>], key: &str| {
            let (line, column) = at(path);
            format!("{file}:{line}:{column}: key `{key}`")
        };
        use PathPart::{Index, Key};
        tls.origins.cert = origin(&[Key("tls"), Key("cert")], "tls.cert");
        tls.origins.key = origin(&[Key("tls"), Key("key")], "tls.key");
        tls.origins.ca = origin(&[Key("tls"), Key("ca")], "tls.ca");
        tls.origins.certificates = (0..tls.certificates.len())
            .map(|i| {
                let at = |k| [Key("tls"), Key("certificates"), Index(i), Key(k)];
                (
                    origin(&at("cert"), &format!("tls.certificates[{i}].cert")),
                    origin(&at("key"), &format!("tls.certificates[{i}].key")),
                )
            })
            .collect();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[server]
listen = ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
domains = ["example.com"]

[registrar]
min_expires = 60

[auth]
challenge = "www"
algorithms = ["SHA-256", "MD5"]

[[aliases]]
alias = "alice@example.com"
password = "wonderland"
transports = ["udp"]
"#;

    #[test]
    fn good_config_and_default() {
        let c = parse(GOOD, "good.toml").unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(
            c.aliases[0].transports,
            Some(vec![super::super::Transport::Udp])
        );
        parse(DEFAULT_CONFIG, "default").unwrap();
    }

    fn error(text: &str) -> String {
        parse(text, "x.toml").unwrap_err().to_string()
    }

    /// Whether one of the errors reported (one a line) starts so.
    fn has_line(e: &str, prefix: &str) -> bool {
        e.lines().any(|l| l.starts_with(prefix))
    }

    /// Issue 18, finding 9: a duplicate key is named, and every problem of a file is
    /// reported at once, in file order (c01b7a9 said "duplicate key" alone, and only the
    /// problem its checks met first).
    #[test]
    fn duplicate_keys_are_named_and_every_problem_reported_in_file_order() {
        let e = error(&GOOD.replace("min_expires = 60", "min_expires = 60\nmin_expires = 70"));
        assert!(
            has_line(&e, "x.toml:8:1: key `registrar.min_expires`: ")
                && e.contains("duplicate key"),
            "{e}"
        );
        // two problems; the checks meet nonce_ttl (line 12) after max_contacts (line 8)
        // but report in the file's order either way
        let two = GOOD
            .replace("challenge = \"www\"", "challenge = \"www\"\nnonce_ttl = 0")
            .replace("min_expires = 60", "min_expires = 60\nmax_contacts = 0");
        let e = error(&two);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 2, "{e}");
        assert!(
            lines[0].starts_with("x.toml:8:") && lines[0].contains("registrar.max_contacts"),
            "{e}"
        );
        assert!(
            lines[1].starts_with("x.toml:12:") && lines[1].contains("auth.nonce_ttl"),
            "{e}"
        );
    }

    #[test]
    fn outside_service_keys_name_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.lua"), "return {}").unwrap();
        let text = format!(
            "{GOOD}\n[[hooks]]\ntype = \"lua\"\nscript = \"p.lua\"\nallow_http = [\"https://ok.example.com/\", \"ftp://x/\"]\nhttp_max_connections = 0\n"
        );
        let e = parse_in(&text, "x.toml", dir.path().to_path_buf())
            .unwrap_err()
            .to_string();
        assert!(
            has_line(
                &e,
                "x.toml:21:42: key `hooks[0].allow_http[1]`: \"ftp://x/\""
            ),
            "{e}"
        );
        assert!(
            has_line(
                &e,
                "x.toml:22:1: key `hooks[0].http_max_connections`: must be at least 1"
            ),
            "{e}"
        );
        let bad = text.replace("http_max_connections = 0", "on_outage = \"maybe\"");
        let e = parse_in(&bad, "x.toml", dir.path().to_path_buf())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `hooks[0].on_outage`") && e.contains("`challenge`"),
            "{e}"
        );
    }

    #[test]
    fn hooks_know_where_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("lib.so"), "not a library").unwrap();
        let c = parse_in(
            &format!("{GOOD}\n[[hooks]]\ntype = \"plugin\"\npath = \"lib.so\"\n"),
            "x.toml",
            dir.path().to_path_buf(),
        )
        .unwrap();
        assert_eq!(c.hooks[0].origin, "x.toml:20:1: key `hooks[0].path`");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let e = error(&GOOD.replace("min_expires = 60", "min_expires = 60\nmin_expire = 5"));
        assert!(
            has_line(
                &e,
                "x.toml:8:1: key `registrar.min_expire`: unknown field `min_expire`"
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_values_name_line_and_key() {
        let e = error(&GOOD.replace("\"SHA-256\", \"MD5\"", "\"SHA256\""));
        assert!(has_line(&e, "x.toml:11:"), "{e}");
        assert!(
            e.contains("key `auth.algorithms`") && e.contains("unknown algorithm \"SHA256\""),
            "{e}"
        );
        let e = error(&GOOD.replace("udp:127.0.0.1:5060\"", "sctp:127.0.0.1:5060\""));
        assert!(
            has_line(&e, "x.toml:3:") && e.contains("key `server.listen"),
            "{e}"
        );
        let e = error(&GOOD.replace("min_expires = 60", "min_expires = \"60\""));
        assert!(
            has_line(&e, "x.toml:7:") && e.contains("registrar.min_expires"),
            "{e}"
        );
    }

    #[test]
    fn checks_across_values_name_line_and_key() {
        // (default_expires 3600 is then out of range too: both are reported, in file
        // order, the absent default_expires at its table's header)
        let e = error(&GOOD.replace("min_expires = 60", "min_expires = 9000"));
        assert!(
            e.lines().any(|l| l.starts_with(
                "x.toml:7:1: key `registrar.min_expires`: min_expires (9000) is above"
            )),
            "{e}"
        );
        assert!(
            has_line(&e, "x.toml:6:2: key `registrar.default_expires`"),
            "{e}"
        );
        let e = error(&GOOD.replace("password = \"wonderland\"", "ha1 = \"abc\""));
        assert!(has_line(&e, "x.toml:15:1: key `aliases[0].ha1`"), "{e}");
        let e = error(&GOOD.replace("alice@example.com", "alice@other.org"));
        assert!(
            e.contains("key `aliases[0].alias`") && e.contains("not in [server] domains"),
            "{e}"
        );
        let e = error("[server]\nlisten = []\n");
        assert!(has_line(&e, "x.toml:2:1: key `server.listen`"), "{e}");
        let e = error("[server\nlisten = []\n");
        assert!(has_line(&e, "x.toml:1:"), "{e}");
    }

    /// Issue 20: an alias's own limits and reply headers are checked like `[registrar]`'s.
    #[test]
    fn alias_limits_and_reply_headers_name_line_and_key() {
        let text = GOOD.replace(
            "transports = [\"udp\"]",
            "transports = [\"udp\"]\nmax_contacts = 0\nmin_expires = 300\nmax_expires = 100\n\
             reply_headers = { Via = \"SIP/2.0/UDP x\", \"P-Associated-URI\" = \"<sip:a@example.com>\" }",
        );
        let e = error(&text);
        assert!(
            has_line(
                &e,
                "x.toml:17:1: key `aliases[0].max_contacts`: must be at least 1"
            ),
            "{e}"
        );
        assert!(
            has_line(
                &e,
                "x.toml:18:1: key `aliases[0].min_expires`: min_expires 300 is above max_expires 100"
            ),
            "{e}"
        );
        assert!(
            e.lines()
                .any(|l| l.contains("key `aliases[0].reply_headers`") && l.contains("Via")),
            "{e}"
        );
        assert!(!e.contains("P-Associated-URI"), "{e}");
        let fine = GOOD.replace(
            "transports = [\"udp\"]",
            "transports = [\"udp\"]\nmax_contacts = 2\nmax_expires = 120\nevict = \"refuse\"\n\
             reply_headers = { \"P-Associated-URI\" = \"<sip:a@example.com>\" }",
        );
        let c = parse(&fine, "x.toml").unwrap();
        assert_eq!(c.aliases[0].max_contacts, Some(2));
        assert_eq!(c.aliases[0].evict, Some(super::super::Evict::Refuse));
    }

    #[test]
    fn admin_checks_name_line_and_key() {
        let open = format!("{GOOD}\n[admin]\nlisten = \"0.0.0.0:5080\"\n");
        let e = error(&open);
        assert!(
            has_line(
                &e,
                "x.toml:19:1: key `admin.listen`: an admin listener on 0.0.0.0:5080 (not loopback) needs `admin.token`"
            ),
            "{e}"
        );
        let e = error(&format!("{open}token = \"\"\n"));
        assert!(e.contains("x.toml:20:1: key `admin.token`"), "{e}");
        let c = parse(&format!("{open}token = \"t\"\n"), "x.toml").unwrap();
        assert_eq!(c.admin.unwrap().history, 10_000);
        let c = parse(&format!("{GOOD}\n[admin]\n"), "x.toml").unwrap();
        assert_eq!(c.admin.unwrap().listen.to_string(), "127.0.0.1:5080");
        assert!(parse(GOOD, "x.toml").unwrap().admin.is_none());
    }

    #[test]
    fn store_checks_name_line_and_key() {
        let redis = format!("{GOOD}\n[store]\ntype = \"redis\"\n");
        let e = error(&redis);
        assert!(
            has_line(
                &e,
                "x.toml:19:1: key `store.type`: a redis store needs `store.url`"
            ),
            "{e}"
        );
        let e = error(&format!("{redis}url = \"http://x\"\n"));
        assert!(
            has_line(
                &e,
                "x.toml:20:1: key `store.url`: \"http://x\" is not a Redis URL"
            ),
            "{e}"
        );
        let e = error(&format!("{redis}url = \"redis://127.0.0.1/\"\n"));
        assert!(
            has_line(
                &e,
                "x.toml:19:1: key `store.type`: nodes sharing a redis store must share `auth.nonce_secret`"
            ),
            "{e}"
        );
        let e = error(&GOOD.replace("[auth]", "[store]\ntype = \"disk\"\n[auth]"));
        assert!(
            e.contains("key `store.type`") && e.contains("unknown variant"),
            "{e}"
        );
        let e = error(&format!("{GOOD}\n[store]\ncommit_delay_ms = 5000\n"));
        assert!(
            has_line(
                &e,
                "x.toml:19:1: key `store.commit_delay_ms`: commit_delay_ms is at most 1000"
            ),
            "{e}"
        );
        assert_eq!(parse(GOOD, "x.toml").unwrap().store.commit_delay_ms, 10);
        let fine = GOOD.replace(
            "[auth]",
            "[store]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:6379/0\"\n[auth]\nnonce_secret = \"s\"",
        );
        let c = parse(&fine, "x.toml").unwrap();
        assert_eq!(c.store.kind, super::super::StoreKind::Redis);
        assert_eq!(
            parse(GOOD, "x.toml").unwrap().store.kind,
            super::super::StoreKind::Embedded
        );
    }
}
