//! Any bytes as a datagram to a whole registrar (digest auth, an alias list, the guard,
//! the memory store), through `Core::handle` as a transport hands it over.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipreg::app::{App, Options};
use sipreg::config::{self, Transport};
use sipreg::core::{Output, Packet};
use std::sync::OnceLock;

const CONFIG: &str = r#"
[server]
listen = ["udp:127.0.0.1:0"]
domains = ["example.com"]

[registrar]
unknown_alias = "challenge"

[auth]
challenge = "www"
algorithms = ["SHA-256", "MD5"]
nonce_secret = "fuzz"

[[aliases]]
alias = "alice@example.com"
password = "wonderland"
"#;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let cfg = config::parse(CONFIG, "fuzz.toml").unwrap();
        App::build(&cfg, Options::offline()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let core = &app().core;
    let mut out = Output::default();
    let packet = Packet {
        bytes: data,
        source: "192.0.2.10:5060".parse().unwrap(),
        transport: Transport::Udp,
        now_ms: core.clock().now_ms(),
    };
    core.handle(packet, &mut out);
});
