//! The in-process harness: a core from TOML text, requests built as text, replies read back
//! (and cross-checked with rsip, a parser we did not write).

use sipreg::app::{App, Options, StoreChoice};
use sipreg::clock::Clock;
use sipreg::config::{self, Transport};
use sipreg::core::{Core, Output, Packet};
use sipreg::hooks::Hooks;
use sipreg::kv::Kv;
use sipreg::lua::LuaHooks;
use sipreg::proxy::Outgoing;
use sipreg::store::{LocationStore, Stores};
use std::net::SocketAddr;
use std::sync::Arc;

use std::cell::RefCell;
use std::sync::Once;

pub const T0: u64 = 1_800_000_000_000;

/// The system's time, as the server reads it.
pub fn now_ms() -> u64 {
    Clock::system().now_ms()
}

/// The application `cfg` describes, built by the server's own wiring point over memory
/// stores, with `extra` Rust hooks asked ahead of the configured ones.
pub fn app(cfg: &config::Config, extra: Vec<Arc<dyn Hooks>>) -> App {
    try_app(cfg, extra, StoreChoice::Memory, Clock::system()).unwrap_or_else(|e| panic!("{e}"))
}

/// [`app`] over this location store (and a fresh `sip.kv`).
pub fn app_on(cfg: &config::Config, location: Arc<dyn LocationStore>) -> App {
    let stores = Stores {
        location,
        kv: Arc::new(Kv::new()),
        clock: Clock::system(),
    };
    try_app(cfg, Vec::new(), StoreChoice::Given(stores), Clock::system())
        .unwrap_or_else(|e| panic!("{e}"))
}

fn try_app(
    cfg: &config::Config,
    extra: Vec<Arc<dyn Hooks>>,
    stores: StoreChoice,
    clock: Clock,
) -> Result<App, String> {
    let options = Options {
        stores,
        clock,
        states_per_script: 2,
        extra,
    };
    App::build(cfg, options).map_err(|e| match e {
        sipreg::app::BuildError::Hooks(errors) => errors.join("\n"),
        sipreg::app::BuildError::Store(e) => e.to_string(),
    })
}

/// A core at a controllable time.
pub struct Harness {
    pub core: Arc<Core>,
    pub now: u64,
    pub source: SocketAddr,
    pub transport: Transport,
    /// The Lua scripts of the configuration, for reload tests.
    pub scripts: Vec<Arc<LuaHooks>>,
    /// The folder of the configuration and its scripts (removed when dropped).
    pub dir: Option<tempfile::TempDir>,
    /// The stores the core and its hooks share.
    pub stores: Stores,
    /// What the stores need alive (a Redis server, an embedded store's folder).
    pub _keep: Vec<Box<dyn std::any::Any>>,
}

/// The location store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Memory,
    /// `[store] type = "embedded"`, in a fresh folder, committing at once.
    Embedded,
    /// `[store] type = "redis"`, on a `redis-server` of the test's own.
    Redis,
}

impl Harness {
    pub fn new(toml: &str) -> Harness {
        Harness::with_hooks(toml, Vec::new())
    }

    pub fn with_hooks(toml: &str, hooks: Vec<Arc<dyn Hooks>>) -> Harness {
        let cfg = config::parse(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        Harness::built(&cfg, hooks, None).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The application of `cfg` (with `extra` Rust hooks ahead of the configured ones),
    /// built by the server's wiring point over memory stores; `dir` holds its files.
    pub fn built(
        cfg: &config::Config,
        extra: Vec<Arc<dyn Hooks>>,
        dir: Option<tempfile::TempDir>,
    ) -> Result<Harness, String> {
        Harness::built_on(cfg, extra, dir, StoreChoice::Memory, Vec::new())
    }

    fn built_on(
        cfg: &config::Config,
        extra: Vec<Arc<dyn Hooks>>,
        dir: Option<tempfile::TempDir>,
        stores: StoreChoice,
        keep: Vec<Box<dyn std::any::Any>>,
    ) -> Result<Harness, String> {
        let app = try_app(cfg, extra, stores, Clock::manual(T0))?;
        Ok(Harness {
            core: app.core,
            now: T0,
            source: "192.0.2.10:5060".parse().unwrap(),
            transport: Transport::Udp,
            scripts: app.scripts,
            dir,
            stores: app.stores,
            _keep: keep,
        })
    }

    /// [`Harness::new`] on `store`.
    pub fn on(store: Store, toml: &str) -> Harness {
        let cfg = config::parse(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
        let location: Arc<dyn LocationStore> = match store {
            Store::Memory => Arc::new(sipreg::store::Location::new()),
            Store::Embedded => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("bindings.redb");
                let opened = sipreg::store::embedded::open(&path, std::time::Duration::ZERO)
                    .unwrap_or_else(|e| panic!("{e}"));
                keep.push(Box::new(dir));
                Arc::new(opened.location)
            }
            Store::Redis => {
                let server = crate::redis_server::RedisServer::start();
                let pool = sipreg::store::redis::Redis::new(
                    &server.url(),
                    std::time::Duration::from_secs(2),
                )
                .unwrap();
                keep.push(Box::new(server));
                Arc::new(sipreg::store::redis::RedisLocation::new(
                    Arc::new(pool),
                    "test",
                ))
            }
        };
        let stores = Stores {
            location,
            kv: Arc::new(Kv::new()),
            clock: Clock::manual(T0),
        };
        Harness::built_on(&cfg, Vec::new(), None, StoreChoice::Given(stores), keep)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A core whose configuration names Lua scripts: `files` (name, text) are written into
    /// a fresh folder beside the configuration. Panics with the load errors.
    pub fn with_files(toml: &str, files: &[(&str, &str)]) -> Harness {
        Harness::try_with_files(toml, files).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Harness::with_files`], returning the configuration or load errors.
    pub fn try_with_files(toml: &str, files: &[(&str, &str)]) -> Result<Harness, String> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let cfg = config::parse_in(toml, "test.toml", dir.path().to_path_buf())
            .map_err(|e| e.to_string())?;
        Harness::loaded(&cfg, dir)
    }

    /// A core with the configured hooks of `cfg`, over stores they share; `dir` holds
    /// its files.
    fn loaded(cfg: &config::Config, dir: tempfile::TempDir) -> Result<Harness, String> {
        Harness::built(cfg, Vec::new(), Some(dir))
    }

    /// A core from `examples/<name>.toml`, run from a copy of `examples/` and `scripts/`
    /// (so a test may change its files).
    pub fn example(name: &str) -> Harness {
        let dir = copy_examples();
        let path = dir.path().join("examples").join(format!("{name}.toml"));
        let cfg = config::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        Harness::loaded(&cfg, dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Harness::example`], with the example's text changed by `edit` first (a port).
    pub fn example_edited(name: &str, edit: impl FnOnce(String) -> String) -> Harness {
        let dir = copy_examples();
        let path = dir.path().join("examples").join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, edit(text)).unwrap();
        let cfg = config::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
        Harness::loaded(&cfg, dir).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Writes a file of the harness's folder (a script, a data file).
    pub fn write(&self, name: &str, text: &str) {
        let path = self.dir.as_ref().expect("a folder").path().join(name);
        std::fs::write(path, text).unwrap();
    }

    /// `bytes` as from the harness's source, over its transport, at its time.
    pub fn packet<'a>(&self, bytes: &'a [u8]) -> Packet<'a> {
        Packet {
            bytes,
            source: self.source,
            transport: self.transport,
            now_ms: self.now,
            peer_cert: None,
        }
    }

    /// Sends raw bytes; everything that came out. The harness's clock (the one its
    /// stores and hooks read outside a request) is set to `now` first.
    pub fn output(&self, bytes: &[u8]) -> Output {
        self.stores.clock.set(self.now);
        let mut out = Output::default();
        self.core.handle_offline(self.packet(bytes), &mut out);
        out
    }

    /// Sends raw bytes; the reply, if any.
    pub fn send_raw(&self, bytes: &[u8]) -> Option<Reply> {
        let out = self.output(bytes);
        (!out.reply.is_empty()).then(|| Reply::parse(&out.reply))
    }

    /// Sends a request the proxy must forward; what it forwards.
    pub fn forwarded(&self, req: &str) -> Outgoing {
        let out = self.output(req.as_bytes());
        match out.forward {
            Some(f) => f,
            None => panic!(
                "not forwarded; reply: {}",
                String::from_utf8_lossy(&out.reply)
            ),
        }
    }

    pub fn send(&self, req: &str) -> Reply {
        self.send_raw(req.as_bytes()).expect("a reply")
    }
}

/// A fresh folder holding a copy of `examples/` and `scripts/` (so that a test may change
/// their files, or run an example from it).
pub fn copy_examples() -> tempfile::TempDir {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = tempfile::tempdir().unwrap();
    for folder in ["examples", "scripts"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        for e in std::fs::read_dir(root.join(folder)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.path().join(folder).join(e.file_name())).unwrap();
            }
        }
    }
    dir
}

/// A reply, read back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn parse(bytes: &[u8]) -> Reply {
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 reply");
        assert!(text.ends_with("\r\n\r\n"), "reply not terminated: {text}");
        // rsip, an independent parser, must read every reply we write.
        match rsip::SipMessage::try_from(text.as_str()) {
            Ok(rsip::SipMessage::Response(_)) => {}
            other => panic!("rsip cannot read our reply ({other:?}):\n{text}"),
        }
        let mut lines = text.split("\r\n");
        let status = lines.next().unwrap();
        let mut parts = status.splitn(3, ' ');
        assert_eq!(parts.next(), Some("SIP/2.0"));
        let code = parts.next().unwrap().parse().unwrap();
        let reason = parts.next().unwrap_or("").to_owned();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Reply {
            code,
            reason,
            headers,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `expires` of each Contact of a 200, by contact URI.
    pub fn contact_expires(&self) -> Vec<(String, u32)> {
        self.all("Contact")
            .iter()
            .map(|c| {
                let uri = c[c.find('<').unwrap() + 1..c.find('>').unwrap()].to_owned();
                let exp = c
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("expires="))
                    .expect("expires param")
                    .parse()
                    .unwrap();
                (uri, exp)
            })
            .collect()
    }
}

/// A REGISTER, built field by field.
#[derive(Debug, Clone)]
pub struct Register {
    pub ruri: String,
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    pub branch: String,
    pub contacts: Vec<String>,
    pub expires: Option<String>,
    pub extra: Vec<String>,
}

impl Register {
    pub fn new(aor: &str) -> Register {
        let domain = aor.split('@').nth(1).unwrap_or("example.com");
        Register {
            ruri: format!("sip:{domain}"),
            aor: aor.to_owned(),
            call_id: format!("cid-{aor}"),
            cseq: 1,
            branch: "z9hG4bK-1".to_owned(),
            contacts: Vec::new(),
            expires: None,
            extra: Vec::new(),
        }
    }

    pub fn contact(mut self, c: &str) -> Register {
        self.contacts.push(c.to_owned());
        self
    }

    pub fn expires(mut self, e: &str) -> Register {
        self.expires = Some(e.to_owned());
        self
    }

    pub fn cseq(mut self, n: u32) -> Register {
        self.cseq = n;
        self.branch = format!("z9hG4bK-{n}");
        self
    }

    pub fn call_id(mut self, c: &str) -> Register {
        self.call_id = c.to_owned();
        self
    }

    pub fn header(mut self, h: &str) -> Register {
        self.extra.push(h.to_owned());
        self
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "REGISTER {} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;rport;branch={}\r\nMax-Forwards: 70\r\nFrom: <sip:{}>;tag=ft1\r\nTo: <sip:{}>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\n",
            self.ruri, self.branch, self.aor, self.aor, self.call_id, self.cseq
        );
        for c in &self.contacts {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = &self.expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        for h in &self.extra {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s
    }
}

/// The text of a file of `host/tests/data/`.
pub fn data(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// A configuration: the file `base` of `host/tests/data/` with `extra` (TOML text) over
/// it: its tables merged key by key, its values replacing the base's, its arrays of
/// tables (`[[aliases]]`, `[[hooks]]`) added to the base's.
pub fn conf(base: &str, extra: &str) -> String {
    merged(&data(base), extra)
}

/// The configuration text `base` with `extra` over it, as [`conf`] lays it.
pub fn merged(base: &str, extra: &str) -> String {
    fn merge(into: &mut toml::Table, from: toml::Table) {
        for (k, v) in from {
            match (into.get_mut(&k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
                (Some(toml::Value::Array(a)), toml::Value::Array(b))
                    if b.iter().all(toml::Value::is_table) =>
                {
                    a.extend(b)
                }
                (_, v) => {
                    into.insert(k, v);
                }
            }
        }
    }
    let mut table: toml::Table = base.parse().unwrap_or_else(|e| panic!("{e}\n{base}"));
    let extra: toml::Table = extra.parse().unwrap_or_else(|e| panic!("{e}\n{extra}"));
    merge(&mut table, extra);
    toml::to_string(&table).unwrap()
}

/// A configuration with alice (UDP and TCP), bob (UDP only) and carol (HA1), on example.com.
pub fn config(challenge: &str, extra_registrar: &str) -> String {
    let extra = format!(
        r#"
[server]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]

[registrar]
default_expires = 3600
min_expires = 60
max_expires = 7200
max_contacts = 3
{extra_registrar}

[auth]
challenge = "{challenge}"
algorithms = ["SHA-256", "MD5"]
nonce_ttl = 300

{aliases}
[[aliases]]
alias = "carol@example.com"
username = "carol"
ha1 = "{carol_ha1}"
"#,
        aliases = data("battery/aliases.toml"),
        carol_ha1 = md5_hex("carol:example.com:secret")
    );
    conf("configs/example.com.toml", &extra)
}

pub fn md5_hex(s: &str) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(s.as_bytes()))
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The value of a `name="value"` or `name=value` parameter in a challenge.
pub fn challenge_param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    challenge
        .trim_start_matches("Digest ")
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

/// Our own digest client (RFC 7616, `qop=auth`): the Authorization value answering
/// `challenge` for `user`/`password`.
pub fn authorization(challenge: &str, user: &str, password: &str, uri: &str, nc: u32) -> String {
    let realm = challenge_param(challenge, "realm").unwrap();
    let nonce = challenge_param(challenge, "nonce").unwrap();
    let alg = challenge_param(challenge, "algorithm").unwrap_or("MD5");
    let h = |s: &str| match alg {
        "SHA-256" => sha256_hex(s),
        "SHA-512-256" => {
            use sha2::Digest;
            sha2::Sha512_256::digest(s.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        }
        _ => md5_hex(s),
    };
    let ha1 = h(&format!("{user}:{realm}:{password}"));
    let ha2 = h(&format!("REGISTER:{uri}"));
    let cnonce = "0a4f113b";
    let nc = format!("{nc:08x}");
    let response = h(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        r#"Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{response}", algorithm={alg}, cnonce="{cnonce}", qop=auth, nc={nc}"#
    )
}

thread_local! {
    static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Writes into the capture buffer of the current thread, if it has one.
pub struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(buf) = c.borrow_mut().as_mut() {
                buf.extend_from_slice(b);
            }
        });
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` and returns what it logged, one event per line. One global subscriber serves
/// every test thread (tracing caches callsite interest globally, so a per-thread default
/// subscriber could miss events that another thread's tests first saw without one).
pub fn logged(f: impl FnOnce()) -> Vec<String> {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(|| ThreadCapture)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    f();
    let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    String::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

pub fn find<'a>(lines: &'a [String], all: &[&str]) -> &'a str {
    lines
        .iter()
        .find(|l| all.iter().all(|w| l.contains(w)))
        .unwrap_or_else(|| panic!("no line with {all:?} in:\n{}", lines.join("\n")))
}

/// A server on real loopback sockets, with the runtime it runs on (both stop when it is
/// dropped).
pub struct Served {
    pub running: sipreg::server::Running,
    _rt: tokio::runtime::Runtime,
}

/// Starts `core` as a server for `cfg`.
pub fn serve(cfg: &config::Config, core: Arc<Core>) -> Served {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = rt.block_on(sipreg::server::start(cfg, core)).unwrap();
    Served { running, _rt: rt }
}

impl Served {
    /// Waits (at most 10 s) until `aor` has a binding.
    pub fn wait_registered(&self, aor: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self
            .running
            .core
            .registrar()
            .location()
            .lookup(aor, now_ms())
            .unwrap()
            .is_empty()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "{aor} never registered"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
