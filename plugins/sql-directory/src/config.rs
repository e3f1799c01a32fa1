//! The plugin's configuration (its `[[hooks]]` entry's `config` table).

use serde::Deserialize;

/// What an alias the directory does not know gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownAlias {
    /// 403.
    Forbidden,
    /// 404.
    NotFound,
    /// Challenged like a real alias, never accepted (a scanner cannot tell).
    Challenge,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `postgresql://user@host:port/db` (any libpq-style URL `postgres` reads), or
    /// `sqlite:PATH` (relative to the configuration's folder).
    pub url: String,
    /// The realm Kamailio computed `ha1` and `ha1b` for: it must be sipreg's `[auth] realm`.
    pub realm: String,
    /// The table, in Kamailio's `subscriber` schema.
    #[serde(default = "subscriber")]
    pub table: String,
    /// Kamailio's `use_domain`: a row names `username` at `domain`; off, `username` alone.
    #[serde(default = "yes")]
    pub use_domain: bool,
    #[serde(default = "forbidden")]
    pub unknown_alias: UnknownAlias,
    /// Threads that query the database, each with its own connection.
    #[serde(default = "four")]
    pub workers: usize,
    /// Seconds an answer is kept, and an alias found missing.
    #[serde(default = "minute")]
    pub cache_ttl: u64,
    #[serde(default = "ten")]
    pub negative_ttl: u64,
    /// Lookups waiting for a worker at once; one more is answered 503.
    #[serde(default = "queue")]
    pub max_queued: usize,
    /// The Retry-After of the 503 a request gets while the database does not answer.
    #[serde(default = "thirty")]
    pub outage_retry_after: u32,
}

fn subscriber() -> String {
    "subscriber".into()
}
fn yes() -> bool {
    true
}
fn forbidden() -> UnknownAlias {
    UnknownAlias::Forbidden
}
fn four() -> usize {
    4
}
fn minute() -> u64 {
    60
}
fn ten() -> u64 {
    10
}
fn queue() -> usize {
    1024
}
fn thirty() -> u32 {
    30
}

impl Config {
    /// Reads and checks the configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let c: Config = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !s.as_bytes()[0].is_ascii_digit()
        };
        if !ident(&c.table) {
            return Err(format!(
                "table {:?}: letters, digits and _ only (it is written into the query)",
                c.table
            ));
        }
        if c.realm.is_empty() {
            return Err("realm: the realm Kamailio computed ha1 with".into());
        }
        if c.workers == 0 || c.workers > 64 {
            return Err("workers: from 1 to 64".into());
        }
        if c.max_queued == 0 {
            return Err("max_queued: at least 1".into());
        }
        Ok(c)
    }
}
