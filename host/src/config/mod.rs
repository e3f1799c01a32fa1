//! The configuration file: strict TOML (an unknown key is an error), checked as a whole
//! before the server starts. See `examples/sipreg.toml` for every key with its meaning.

mod check;
mod listen;
mod load;

pub use listen::{Listen, Transport};
pub use load::{ConfigError, DEFAULT_CONFIG, load_file, parse, parse_in};

use crate::sip::digest::Algorithm;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    #[serde(default)]
    pub registrar: Registrar,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub aliases: Vec<Alias>,
    #[serde(default)]
    pub proxy: Proxy,
    #[serde(default)]
    pub qualify: Qualify,
    #[serde(default)]
    pub store: Store,
    /// The admin HTTP listener; none without an `[admin]` table.
    #[serde(default)]
    pub admin: Option<Admin>,
    /// Policy implementations asked before the built-in one, in this order.
    #[serde(default)]
    pub hooks: Vec<HookEntry>,
    /// The certificates of the `tls` and `wss` listeners and of outgoing TLS; none
    /// without a `[tls]` table.
    #[serde(default)]
    pub tls: Option<Tls>,
    /// The `ws` and `wss` listeners' HTTP upgrade.
    #[serde(default)]
    pub websocket: WebSocket,
    /// The folder relative paths in the file are resolved against: the configuration
    /// file's own folder (the working directory for the embedded default).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The kinds of hook implementation a `[[hooks]]` entry can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookKind {
    /// A Lua 5.4 script (`script`).
    Lua,
    /// A native plugin, a shared library built against `plugin-api` (`path`).
    Plugin,
}

/// One `[[hooks]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookEntry {
    #[serde(rename = "type")]
    pub kind: HookKind,
    /// The script (`type = "lua"`), relative to the configuration file's folder.
    #[serde(default)]
    pub script: Option<PathBuf>,
    /// The plugin's shared library (`type = "plugin"`), relative to the same folder.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Handed to the script as `sip.config()`, to a plugin as TOML text.
    #[serde(default)]
    pub config: toml::Table,
    /// The memory one Lua state may use, in MiB.
    #[serde(default = "defaults::memory_limit_mib")]
    pub memory_limit_mib: u32,
    /// The Lua VM instructions one hook call may run.
    #[serde(default = "defaults::instruction_budget")]
    pub instruction_budget: u64,
    /// The wall-clock time one Lua hook call may take, in milliseconds (whatever it
    /// does: the budget counts work, this counts time).
    #[serde(default = "defaults::time_limit_ms")]
    pub time_limit_ms: u64,
    /// The most `sip.kv` keys the implementation may hold at once.
    #[serde(default = "defaults::kv_max_keys")]
    pub kv_max_keys: usize,
    /// The most bytes (keys and values) it may hold in `sip.kv`.
    #[serde(default = "defaults::kv_max_bytes")]
    pub kv_max_bytes: usize,
    /// The largest value it may store.
    #[serde(default = "defaults::kv_max_value_bytes")]
    pub kv_max_value_bytes: usize,
    /// The URLs a script may reach with `sip.http` (each a prefix: scheme, host, port and
    /// the start of the path); empty, `sip.http` raises.
    #[serde(default)]
    pub allow_http: Vec<String>,
    /// The most `sip.http` connections to one destination at once (lookups beyond them
    /// wait for one, within their timeout): with answers taking 100 ms, 32 connections
    /// serve 320 lookups a second.
    #[serde(default = "defaults::http_max_connections")]
    pub http_max_connections: usize,
    /// The most entries a script's `sip.cache` holds.
    #[serde(default = "defaults::cache_max_entries")]
    pub cache_max_entries: usize,
    /// What a request gets when an outside service the implementation reaches fails
    /// (times out, refuses, answers 5xx or something unreadable): `"503"` (with
    /// Retry-After), `"500"`, or `"challenge"` (from `authenticate`: challenged again).
    #[serde(default)]
    pub on_outage: OnOutage,
    /// The Retry-After of that 503, in seconds.
    #[serde(default = "defaults::outage_retry_after")]
    pub outage_retry_after: u32,
    /// Where the entry stands in the configuration (`file:line:column: key
    /// `hooks[i].path``), for the errors of its loading; set by the parser.
    #[serde(skip)]
    pub origin: String,
}

impl HookEntry {
    /// The script or plugin file, resolved against the configuration's folder.
    pub fn file(&self, base_dir: &Path) -> PathBuf {
        let file = match self.kind {
            HookKind::Lua => self.script.as_deref(),
            HookKind::Plugin => self.path.as_deref(),
        };
        base_dir.join(file.unwrap_or(Path::new("")))
    }
}

/// `[server]`: where to listen and which domains are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub listen: Vec<Listen>,
    /// The domains served; empty serves whatever domain a REGISTER names.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The largest message accepted, in bytes.
    #[serde(default = "defaults::max_message_size")]
    pub max_message_size: usize,
    /// Seconds a TCP connection may stay silent before it is closed.
    #[serde(default = "defaults::tcp_idle_timeout")]
    pub tcp_idle_timeout: u64,
    /// Seconds an accepted TCP connection has to send its first byte.
    #[serde(default = "defaults::tcp_first_byte_timeout")]
    pub tcp_first_byte_timeout: u64,
    /// Seconds a message has to arrive whole once its first byte came (a client that
    /// trickles a byte at a time is closed).
    #[serde(default = "defaults::tcp_message_timeout")]
    pub tcp_message_timeout: u64,
    /// The most TCP connections open at once (default: the descriptor limit less 128, so
    /// that the admin listener and the stores keep theirs); more are refused and counted.
    #[serde(default)]
    pub tcp_max_connections: Option<usize>,
    /// The most TCP connections open at once from one IP address.
    #[serde(default = "defaults::tcp_max_per_source")]
    pub tcp_max_per_source: usize,
    /// The host (name or IP address) this server writes into Via and Record-Route when it
    /// forwards; default: the listen address. Needed when listening on 0.0.0.0 or ::.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Seconds a graceful stop (SIGTERM) may take; past them the process exits anyway,
    /// whatever a hook is doing.
    #[serde(default = "defaults::shutdown_grace")]
    pub shutdown_grace: u64,
    /// Milliseconds a request may wait in its hooks (an HTTP or SQL lookup), all calls
    /// together; past them the hook waiting fails the request.
    #[serde(default = "defaults::wait_deadline_ms")]
    pub wait_deadline_ms: u64,
    /// The most requests parked at once while their hooks wait; one more gets 503 with
    /// Retry-After.
    #[serde(default = "defaults::max_waiting")]
    pub max_waiting: usize,
}

/// `[qualify]`: OPTIONS to registered devices, their round-trip time and reachability.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qualify {
    /// Seconds between probes of every binding; 0: only NATed ones are probed.
    #[serde(default)]
    pub interval: u32,
    /// Seconds between probes of a NATed binding (the keep-alive of its NAT binding);
    /// 0: as `interval`.
    #[serde(default = "defaults::natted_interval")]
    pub natted_interval: u32,
    /// Milliseconds an answer may take before the probe counts as failed and is repeated.
    #[serde(default = "defaults::qualify_timeout_ms")]
    pub timeout_ms: u64,
    /// Failed probes in a row that make a binding unreachable.
    #[serde(default = "defaults::qualify_failures")]
    pub failures: u32,
    /// Remove an unreachable binding (the `expire` hooks see reason `unreachable`).
    #[serde(default)]
    pub remove_unreachable: bool,
}

impl Default for Qualify {
    fn default() -> Self {
        Qualify {
            interval: 0,
            natted_interval: defaults::natted_interval(),
            timeout_ms: defaults::qualify_timeout_ms(),
            failures: defaults::qualify_failures(),
            remove_unreachable: false,
        }
    }
}

/// Where bindings are kept (`[store] type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreKind {
    /// In memory only: gone with the process.
    Memory,
    /// In memory, and in a file (`path`) that every 200 waits for.
    Embedded,
    /// In a Redis server (`url`) that several nodes share.
    Redis,
}

/// `[store]`: the location store (and, with Redis, the key-value store of the hooks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    #[serde(rename = "type", default = "defaults::store_kind")]
    pub kind: StoreKind,
    /// The embedded store's file, relative to the configuration's folder (its write-ahead
    /// log is beside it, in `<path>.wal.<n>`).
    #[serde(default = "defaults::store_path")]
    pub path: PathBuf,
    /// The Redis server, `redis://host:port/db`.
    #[serde(default)]
    pub url: Option<String>,
    /// What every Redis key starts with (several deployments can share one Redis).
    #[serde(default = "defaults::store_prefix")]
    pub prefix: String,
    /// Milliseconds a Redis command may take before the store counts as down.
    #[serde(default = "defaults::store_timeout_ms")]
    pub timeout_ms: u64,
    /// How long the embedded store gathers writes after the first of a group before it
    /// appends them to its log with one fsync (milliseconds; every 200 waits as long).
    #[serde(default = "defaults::store_commit_delay_ms")]
    pub commit_delay_ms: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            kind: defaults::store_kind(),
            path: defaults::store_path(),
            url: None,
            prefix: defaults::store_prefix(),
            timeout_ms: defaults::store_timeout_ms(),
            commit_delay_ms: defaults::store_commit_delay_ms(),
        }
    }
}

/// `[admin]`: the admin HTTP API, the status page and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Where the admin API listens (loopback by default).
    #[serde(default = "defaults::admin_listen")]
    pub listen: std::net::SocketAddr,
    /// The bearer token every API request must carry; required when `listen` is not a
    /// loopback address.
    #[serde(default)]
    pub token: Option<String>,
    /// How many registration history entries are kept.
    #[serde(default = "defaults::history")]
    pub history: usize,
}

impl Alias {
    /// The algorithm of `ha1`: `ha1_algorithm`, else by its length (32 hex digits MD5, 64
    /// SHA-256). None when neither says one (the checks refuse that).
    pub fn ha1_algorithm(&self) -> Option<Algorithm> {
        let h = self.ha1.as_ref()?;
        match &self.ha1_algorithm {
            Some(name) => Algorithm::from_token(name),
            None => match h.len() {
                32 => Some(Algorithm::Md5),
                64 => Some(Algorithm::Sha256),
                _ => None,
            },
        }
    }

    /// The address-of-record it names (`user@domain`, the domain in lower case), as the
    /// registrar compares them; None when it is not `user@domain`.
    pub fn aor(&self) -> Option<String> {
        let (user, host) = split_alias(&self.alias)?;
        Some(format!("{user}@{}", host.to_ascii_lowercase()))
    }
}

impl Config {
    /// The entries the registration history keeps.
    pub fn history_capacity(&self) -> usize {
        self.admin
            .as_ref()
            .map_or_else(defaults::history, |a| a.history)
    }
}

/// Whether a TLS client must show a certificate (mutual TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerifyClient {
    /// No certificate is asked for.
    #[default]
    Off,
    /// A certificate is asked for; a client without one is served, one whose certificate
    /// does not verify against `ca` is refused.
    Optional,
    /// A client without a certificate that verifies against `ca` is refused.
    Required,
}

/// `[tls]`: the server's certificate, the trust anchors, mutual TLS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// The certificate chain (PEM), the server's own certificate first; relative to the
    /// configuration file's folder. Read again when it changes and on SIGHUP.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Trust anchors (PEM) for client certificates and, besides the system's, for the
    /// servers this one connects to.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub verify_client: VerifyClient,
    /// More certificates, chosen by the name a client asks for (SNI) among their
    /// subject alternative names; `cert`/`key` serve every other name.
    #[serde(default)]
    pub certificates: Vec<TlsCertificate>,
    /// Seconds a TLS handshake may take.
    #[serde(default = "defaults::handshake_timeout")]
    pub handshake_timeout: u64,
    /// Where `cert`, `key` and each of `certificates` are written (`file:line:column:
    /// key ...`), for the errors of their loading.
    #[serde(skip)]
    pub origins: TlsOrigins,
}

/// One more certificate of `[tls]`, chosen by SNI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificate {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where the files of `[tls]` are named in the configuration.
#[derive(Debug, Clone, Default)]
pub struct TlsOrigins {
    pub cert: String,
    pub key: String,
    pub ca: String,
    /// Per entry of `certificates`: its cert's and its key's.
    pub certificates: Vec<(String, String)>,
}

/// `[websocket]`: the HTTP upgrade of the `ws` and `wss` listeners (RFC 7118).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocket {
    /// The `Origin`s a browser may connect from (`https://phone.example.com`); empty:
    /// any (clients that are not browsers send none).
    #[serde(default)]
    pub origins: Vec<String>,
    /// Seconds a connection has to complete its upgrade (and TLS handshake for `wss`).
    #[serde(default = "defaults::handshake_timeout")]
    pub upgrade_timeout: u64,
}

impl Default for WebSocket {
    fn default() -> Self {
        WebSocket {
            origins: Vec::new(),
            upgrade_timeout: defaults::handshake_timeout(),
        }
    }
}

/// What happens to requests that are not for the registrar (`[proxy]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyMode {
    /// Forward to the best binding (RFC 3261 section 16, stateless).
    Proxy,
    /// Answer 302 with every binding of the AOR.
    Redirect,
    /// Refuse with 405: a registrar only.
    Off,
}

/// `[proxy]`: routing requests to registered devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    #[serde(default = "defaults::proxy_mode")]
    pub mode: ProxyMode,
    /// Add Record-Route, so that requests within a dialog come back through this server
    /// (needed to reach devices behind NAT and over TCP within a dialog).
    #[serde(default = "defaults::record_route")]
    pub record_route: bool,
}

impl Default for Proxy {
    fn default() -> Self {
        Proxy {
            mode: defaults::proxy_mode(),
            record_route: defaults::record_route(),
        }
    }
}

/// What happens to a REGISTER for an alias that is not in `[[aliases]]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownAlias {
    /// 403 Forbidden.
    Forbidden,
    /// 404 Not Found.
    NotFound,
    /// Challenged like a real alias and never accepted.
    Challenge,
}

/// `[registrar]`: the RFC 3261 section 10.3 knobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registrar {
    #[serde(default = "defaults::default_expires")]
    pub default_expires: u32,
    #[serde(default = "defaults::min_expires")]
    pub min_expires: u32,
    #[serde(default = "defaults::max_expires")]
    pub max_expires: u32,
    #[serde(default = "defaults::max_contacts")]
    pub max_contacts: usize,
    #[serde(default = "defaults::unknown_alias")]
    pub unknown_alias: UnknownAlias,
    /// Seconds between a device's keep-alives on an outbound flow (RFC 5626 Flow-Timer,
    /// sent in the 200 to a REGISTER that supports outbound).
    #[serde(default = "defaults::flow_timer")]
    pub flow_timer: u32,
    /// Which binding goes when a REGISTER would leave an AOR more than `max_contacts`.
    #[serde(default)]
    pub evict: Evict,
}

/// Which binding goes when a REGISTER would leave an AOR more bindings than
/// `max_contacts` (`[registrar] evict`, `[[aliases]] evict`, or `bind` for one AOR).
/// Never one the REGISTER itself writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evict {
    /// The binding refreshed least recently.
    #[default]
    Oldest,
    /// The binding with the lowest q (no q counts as 1.0); of equals, the oldest.
    LowestQ,
    /// None: the REGISTER is refused, 403 "Too many contacts".
    Refuse,
}

impl Evict {
    /// The name in configuration and scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            Evict::Oldest => "oldest",
            Evict::LowestQ => "lowest_q",
            Evict::Refuse => "refuse",
        }
    }

    /// The eviction a name says (`oldest`, `lowest_q`, `refuse`).
    pub fn parse(name: &str) -> Option<Evict> {
        [Evict::Oldest, Evict::LowestQ, Evict::Refuse]
            .into_iter()
            .find(|e| e.as_str() == name)
    }
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar {
            default_expires: defaults::default_expires(),
            min_expires: defaults::min_expires(),
            max_expires: defaults::max_expires(),
            max_contacts: defaults::max_contacts(),
            unknown_alias: defaults::unknown_alias(),
            flow_timer: defaults::flow_timer(),
            evict: Evict::default(),
        }
    }
}

/// How a REGISTER is challenged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Challenge {
    /// 401 with WWW-Authenticate; credentials in Authorization.
    Www,
    /// 407 with Proxy-Authenticate; credentials in Proxy-Authorization.
    Proxy,
    /// No authentication.
    Off,
}

/// `[auth]`: digest authentication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(default = "defaults::challenge")]
    pub challenge: Challenge,
    /// The realm; defaults to the first served domain.
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default = "defaults::algorithms", deserialize_with = "algorithms")]
    pub algorithms: Vec<Algorithm>,
    #[serde(default = "defaults::nonce_ttl")]
    pub nonce_ttl: u64,
    /// The key nonces are signed with; random per start when absent. Nodes that share
    /// clients must share it.
    #[serde(default)]
    pub nonce_secret: Option<String>,
    /// `[auth.guard]`: the failed-authentication guard (`auth/guard.rs`).
    #[serde(default)]
    pub guard: GuardSettings,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            challenge: defaults::challenge(),
            realm: None,
            algorithms: defaults::algorithms(),
            nonce_ttl: defaults::nonce_ttl(),
            nonce_secret: None,
            guard: GuardSettings::default(),
        }
    }
}

/// What a request gets when an outside service failed its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum OnOutage {
    /// 503 with Retry-After.
    #[default]
    #[serde(rename = "503")]
    Unavailable,
    /// 500.
    #[serde(rename = "500")]
    Error,
    /// From `authenticate`, a new challenge (elsewhere 503).
    #[serde(rename = "challenge")]
    Challenge,
}

/// What a banned source is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardAnswer {
    /// 403 "Too many failed authentications", without a challenge.
    #[default]
    Forbidden,
    /// Nothing at all.
    Drop,
}

/// `[auth.guard]`: failed authentications counted per source address and alias (a ban),
/// and per alias from every source (a backoff).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSettings {
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Failed authentications of one alias from one source address within `window` that
    /// ban that source for that alias.
    #[serde(default = "defaults::guard_failures")]
    pub failures: u32,
    /// Seconds the failures are counted over.
    #[serde(default = "defaults::guard_window")]
    pub window: u64,
    /// Seconds a ban lasts.
    #[serde(default = "defaults::guard_ban")]
    pub ban: u64,
    #[serde(default)]
    pub answer: GuardAnswer,
    /// Failed authentications of one alias from all sources within `window` past which
    /// each failed answer for it waits; 0: no backoff.
    #[serde(default = "defaults::guard_user_failures")]
    pub user_failures: u32,
    /// The first wait, in milliseconds; it doubles with each further failure.
    #[serde(default = "defaults::guard_user_delay_ms")]
    pub user_delay_ms: u64,
    /// The longest wait, in milliseconds.
    #[serde(default = "defaults::guard_user_delay_max_ms")]
    pub user_delay_max_ms: u64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            enabled: true,
            failures: defaults::guard_failures(),
            window: defaults::guard_window(),
            ban: defaults::guard_ban(),
            answer: GuardAnswer::default(),
            user_failures: defaults::guard_user_failures(),
            user_delay_ms: defaults::guard_user_delay_ms(),
            user_delay_max_ms: defaults::guard_user_delay_max_ms(),
        }
    }
}

fn some_algorithms<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Algorithm>>, D::Error> {
    algorithms(d).map(Some)
}

fn algorithms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Algorithm>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    if names.is_empty() {
        return Err(serde::de::Error::custom("at least one algorithm is needed"));
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let a = Algorithm::from_token(&n).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown algorithm \"{n}\", expected \"SHA-512-256\", \"SHA-256\" or \"MD5\""
            ))
        })?;
        if out.contains(&a) {
            return Err(serde::de::Error::custom(format!(
                "algorithm \"{n}\" listed twice"
            )));
        }
        out.push(a);
    }
    Ok(out)
}

/// One `[[aliases]]` entry: a device alias allowed to register.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alias {
    /// `user@domain` (a `sip:` prefix is allowed).
    pub alias: String,
    /// The digest user name; defaults to the user part of the alias.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// HA1 in hex for the configured realm: 32 digits for MD5, 64 for SHA-256 (or for
    /// SHA-512-256 with `ha1_algorithm`).
    #[serde(default)]
    pub ha1: Option<String>,
    /// The algorithm `ha1` was computed with, when its length does not say (64 digits:
    /// SHA-256 unless this says "SHA-512-256").
    #[serde(default)]
    pub ha1_algorithm: Option<String>,
    /// Transports this alias may register over; all when absent.
    #[serde(default)]
    pub transports: Option<Vec<Transport>>,
    /// The digest algorithms this alias is challenged with, in order, instead of
    /// `[auth] algorithms` (e.g. `["MD5"]` for a phone that cannot answer SHA-256).
    #[serde(default, deserialize_with = "some_algorithms")]
    pub algorithms: Option<Vec<Algorithm>>,
    /// This alias's limits, over `[registrar]`'s (a `bind` hook may set others).
    #[serde(default)]
    pub max_contacts: Option<usize>,
    #[serde(default)]
    pub min_expires: Option<u32>,
    #[serde(default)]
    pub max_expires: Option<u32>,
    #[serde(default)]
    pub evict: Option<Evict>,
    /// Headers added to the 200 of this alias's REGISTERs, by name (`Service-Route`,
    /// `P-Associated-URI`, ...).
    #[serde(default)]
    pub reply_headers: std::collections::BTreeMap<String, String>,
}

mod defaults {
    use super::{Challenge, ProxyMode, StoreKind, UnknownAlias};
    use crate::sip::digest::Algorithm;
    use std::path::PathBuf;

    pub fn handshake_timeout() -> u64 {
        10
    }

    pub fn admin_listen() -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], 5080))
    }

    pub fn history() -> usize {
        10_000
    }

    pub fn max_message_size() -> usize {
        65_535
    }
    pub fn tcp_idle_timeout() -> u64 {
        600
    }
    pub fn tcp_first_byte_timeout() -> u64 {
        10
    }
    pub fn shutdown_grace() -> u64 {
        10
    }
    pub fn wait_deadline_ms() -> u64 {
        2_000
    }
    pub fn max_waiting() -> usize {
        10_000
    }
    pub fn tcp_message_timeout() -> u64 {
        30
    }
    pub fn tcp_max_per_source() -> usize {
        100
    }
    pub fn kv_max_keys() -> usize {
        100_000
    }
    pub fn kv_max_bytes() -> usize {
        16 << 20
    }
    pub fn kv_max_value_bytes() -> usize {
        64 << 10
    }
    pub fn http_max_connections() -> usize {
        32
    }
    pub fn cache_max_entries() -> usize {
        10_000
    }
    pub fn outage_retry_after() -> u32 {
        30
    }
    pub fn default_expires() -> u32 {
        3600
    }
    pub fn min_expires() -> u32 {
        60
    }
    pub fn max_expires() -> u32 {
        7200
    }
    pub fn max_contacts() -> usize {
        10
    }
    pub fn natted_interval() -> u32 {
        30
    }
    pub fn qualify_timeout_ms() -> u64 {
        2000
    }
    pub fn qualify_failures() -> u32 {
        3
    }
    pub fn flow_timer() -> u32 {
        120
    }
    pub fn unknown_alias() -> UnknownAlias {
        UnknownAlias::Forbidden
    }
    pub fn challenge() -> Challenge {
        Challenge::Www
    }
    pub fn algorithms() -> Vec<Algorithm> {
        vec![Algorithm::Md5]
    }
    pub fn nonce_ttl() -> u64 {
        300
    }
    pub fn yes() -> bool {
        true
    }
    pub fn guard_failures() -> u32 {
        5
    }
    pub fn guard_window() -> u64 {
        300
    }
    pub fn guard_ban() -> u64 {
        900
    }
    pub fn guard_user_failures() -> u32 {
        20
    }
    pub fn guard_user_delay_ms() -> u64 {
        500
    }
    pub fn guard_user_delay_max_ms() -> u64 {
        8000
    }
    pub fn memory_limit_mib() -> u32 {
        64
    }
    pub fn instruction_budget() -> u64 {
        1_000_000
    }
    pub fn time_limit_ms() -> u64 {
        500
    }
    pub fn store_kind() -> StoreKind {
        StoreKind::Embedded
    }
    pub fn store_path() -> PathBuf {
        PathBuf::from("sipreg-location.redb")
    }
    pub fn store_prefix() -> String {
        "sipreg".to_owned()
    }
    pub fn store_timeout_ms() -> u64 {
        500
    }
    pub fn store_commit_delay_ms() -> u64 {
        10
    }
    pub fn proxy_mode() -> ProxyMode {
        ProxyMode::Proxy
    }
    pub fn record_route() -> bool {
        true
    }
}

/// Splits `user@domain` (an optional `sip:`/`sips:` prefix is dropped).
pub fn split_alias(alias: &str) -> Option<(&str, &str)> {
    let a = alias
        .strip_prefix("sip:")
        .or_else(|| alias.strip_prefix("sips:"))
        .unwrap_or(alias);
    let (user, host) = a.split_once('@')?;
    (!user.is_empty() && crate::sip::via::split_host_port(host).is_some_and(|(_, p)| p.is_none()))
        .then_some((user, host))
}

#[cfg(test)]
mod tests {
    use super::split_alias;

    #[test]
    fn alias_forms() {
        assert_eq!(
            split_alias("alice@example.com"),
            Some(("alice", "example.com"))
        );
        assert_eq!(
            split_alias("sip:bob@Example.com"),
            Some(("bob", "Example.com"))
        );
        assert_eq!(split_alias("bob"), None);
        assert_eq!(split_alias("bob@host:5060"), None);
    }
}
