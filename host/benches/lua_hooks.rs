//! The cost of a Lua hook call: `authenticate` and `bind` of scripts/bench_auth.lua,
//! called in process, as the registrar calls them for a REGISTER with credentials.
//!
//!   cargo bench -p sipreg --bench lua_hooks
//!   valgrind --tool=callgrind target/release/deps/lua_hooks-* 20000   # instructions per call

use sipreg::clock::Clock;
use sipreg::config::{HookEntry, HookKind, Transport};
use sipreg::hooks::{
    AuthRequest, BindKind, BindRequest, Hooks, Identity, ProposedBinding, RequestInfo, Vars,
};
use sipreg::lua::LuaHooks;
use sipreg::sip::Message;
use sipreg::store::Stores;
use std::path::Path;
use std::time::Instant;

const REQUEST: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1;rport\r\nFrom: <sip:user0042@127.0.0.1>;tag=1\r\nTo: <sip:user0042@127.0.0.1>\r\nCall-ID: 1-42@127.0.0.1\r\nCSeq: 2 REGISTER\r\nContact: <sip:user0042@127.0.0.1:5080>\r\nMax-Forwards: 70\r\nExpires: 3600\r\nAuthorization: Digest username=\"user0042\", realm=\"127.0.0.1\", nonce=\"x\", uri=\"sip:127.0.0.1\", response=\"0\", algorithm=MD5\r\nContent-Length: 0\r\n\r\n";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let script = std::env::var("LUA_SCRIPT").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_auth.lua"),
        std::path::PathBuf::from,
    );
    let entry = HookEntry {
        kind: HookKind::Lua,
        script: Some(script.clone()),
        path: None,
        config: toml::Table::new(),
        memory_limit_mib: 64,
        instruction_budget: 1_000_000,
        time_limit_ms: 500,
        kv_max_keys: 100_000,
        kv_max_bytes: 16 << 20,
        kv_max_value_bytes: 64 << 10,
        allow_http: Vec::new(),
        http_max_connections: 32,
        cache_max_entries: 10_000,
        on_outage: Default::default(),
        outage_retry_after: 30,
        origin: String::new(),
    };
    let shared = Stores::memory(Clock::system());
    let hooks = LuaHooks::load(&entry, Path::new("."), shared, &Default::default(), 1)
        .expect("script loads");
    let msg = Message::parse(REQUEST.as_bytes()).expect("request parses");
    let vars = Vars::default();
    let req = RequestInfo {
        msg: &msg,
        source: "127.0.0.1:5080".parse().unwrap(),
        transport: Transport::Udp,
        vars: &vars,
        now_ms: 1_800_000_000_000,
        peer_cert: None,
        deadline: None,
    };
    let auth = AuthRequest {
        aor: "user0042@127.0.0.1",
        username: Some("user0042"),
        realm: "127.0.0.1",
    };
    let identity = Identity {
        username: "user0042".into(),
    };
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(hooks.authenticate(&req, &auth).unwrap());
    }
    let authenticate = t.elapsed();
    let t = Instant::now();
    for _ in 0..n {
        let mut bind = BindRequest::new(
            "user0042@127.0.0.1",
            Some(&identity),
            BindKind::Update,
            vec![ProposedBinding {
                contact: "<sip:user0042@127.0.0.1:5080>",
                expires: 3600,
                q: None,
                instance: None,
                reg_id: None,
                registration_id: uuid::Uuid::nil(),
                new: false,
            }],
        );
        std::hint::black_box(hooks.bind(&req, &mut bind).unwrap());
    }
    let bind = t.elapsed();
    println!("Lua hook calls of {}, {n} each", script.display());
    println!(
        "  authenticate: {:>8.0} ns/call",
        authenticate.as_nanos() as f64 / n as f64
    );
    println!(
        "  bind:         {:>8.0} ns/call",
        bind.as_nanos() as f64 / n as f64
    );
}
