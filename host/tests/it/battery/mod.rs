//! One battery per hook, each run against three implementations of one policy: the
//! built-in one (the `[[aliases]]` list of `data/battery/aliases.toml` for `authenticate`
//! and `bind`, with [`Policy`], the Rust hooks below, for the rest), the Lua script
//! `data/battery/policy.lua`, and the native plugin `host/tests/plugins/battery`. A
//! battery is one function from a [`Harness`] to what it saw; [`battery!`] makes one test
//! per implementation that compares it with the battery's expected answers.
//!
//! The policy:
//! - aliases `alice@example.com` (user alice, password wonderland, over UDP and TCP) and
//!   `bob@example.com` (user bob, password builder, over UDP only);
//! - `on_request`: `X-Test: maintenance` is answered 503 "Maintenance", `X-Test: drop`
//!   not at all, `X-Test: fail` makes the hook fail; anything else is left alone;
//! - `authenticate`: an unlisted alias gets 403; no credentials or an unknown user name, a
//!   challenge; otherwise the user's password is handed over for the digest check;
//! - `bind`: the authenticated user must own the alias, over a transport enabled for it
//!   (else 403); `quinn@example.com` (user quinn, password quinn-pw) has limits of her
//!   own: at most 1 binding with none evicted (a second is refused), expiry from 60 to
//!   120 s, and her 200 carries `P-Associated-URI: <sip:quinn@example.com>` and
//!   `Service-Route: <sip:edge.example.com;lr>`;
//! - `expire`: the reason of the last binding of an AOR that went away is stored in
//!   `sip.kv` under `expired:<aor>`;
//! - `route`: `support@example.com` goes to `bob@example.com`; `closed@example.com` gets
//!   480 "Closed"; anything else is left to the built-in routing.

mod algorithms;
mod authenticate;
mod bind;
mod expire;
mod limits;
mod on_request;
mod route;

use crate::support::{Harness, Register, Reply, authorization};
use sipreg::hooks::{Decision, ExpireEvent, Hook, HookError, Hooks, RequestInfo, RouteDecision};
use sipreg::kv::{KvStore, KvValue};

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// The folder of the batteries' configuration and script.
fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/battery")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(data().join(name)).unwrap()
}

/// The batteries' Rust hooks, beside the built-in alias list: `on_request`, `expire` and
/// `route` of the policy. `expire` writes to the store it is given once the harness is
/// built (the one its core shares).
#[derive(Default)]
pub struct Policy {
    kv: OnceLock<Arc<dyn KvStore>>,
}

impl Hooks for Policy {
    fn name(&self) -> &str {
        "battery-policy"
    }

    fn reads_bindings(&self) -> bool {
        false
    }

    fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        match req.msg.header_by_name("X-Test") {
            Some("maintenance") => Ok(Decision::Respond(sipreg::sip::Reply::with_reason(
                503,
                "Maintenance",
            ))),
            Some("drop") => Ok(Decision::Drop),
            Some("fail") => Err(HookError::new(
                self.name(),
                Hook::OnRequest,
                "asked to fail",
            )),
            _ => Ok(Decision::Continue),
        }
    }

    fn expire(&self, event: &ExpireEvent<'_>) -> Result<(), HookError> {
        let kv = self.kv.get().expect("the store is given once built");
        let value = KvValue::Str(event.reason.token().into());
        let _ = kv.set(&format!("expired:{}", event.aor), value, None, 0);
        Ok(())
    }

    fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        let uri = req.msg.request_uri().unwrap_or("");
        Ok(if uri.starts_with("sip:support@example.com") {
            RouteDecision::Targets(vec!["sip:bob@example.com".into()])
        } else if uri.starts_with("sip:closed@example.com") {
            RouteDecision::Respond(sipreg::sip::Reply::with_reason(480, "Closed"))
        } else {
            RouteDecision::Pass
        })
    }
}

fn harness(extra: &str, hooks: Vec<Arc<dyn Hooks>>) -> Harness {
    let text = format!("{}\n{extra}", read("base.toml"));
    let cfg =
        sipreg::config::parse_in(&text, "battery.toml", data()).unwrap_or_else(|e| panic!("{e}"));
    Harness::built(&cfg, hooks, None).unwrap_or_else(|e| panic!("{e}"))
}

/// The built-in alias list, with [`Policy`] for the other hooks.
pub fn builtin() -> Harness {
    let policy = Arc::new(Policy::default());
    let h = harness(&read("aliases.toml"), vec![policy.clone()]);
    let _ = policy.kv.set(h.stores.kv.clone());
    h
}

/// `policy.lua`.
pub fn lua() -> Harness {
    harness(
        "[[hooks]]\ntype = \"lua\"\nscript = \"policy.lua\"\n",
        Vec::new(),
    )
}

/// The battery plugin.
pub fn plugin() -> Harness {
    let path = crate::plugins::library("test-plugin-battery");
    harness(
        &format!(
            "[[hooks]]\ntype = \"plugin\"\npath = \"{}\"\n",
            path.display()
        ),
        Vec::new(),
    )
}

/// A REGISTER of `aor` from a contact of its user's name.
pub fn register(aor: &str) -> Register {
    crate::scripts::register(aor)
}

/// A REGISTER answered 401, then sent again with `user`/`password`: the final code.
pub fn with_digest(h: &Harness, req: Register, user: &str, password: &str) -> u16 {
    digest_reply(h, req, user, password).code
}

/// [`with_digest`], the final reply whole.
pub fn digest_reply(h: &Harness, req: Register, user: &str, password: &str) -> Reply {
    let r = h.send(&req.clone().text());
    if r.code != 401 {
        return r;
    }
    let challenge = r.header("WWW-Authenticate").unwrap().to_owned();
    let auth = authorization(&challenge, user, password, "sip:example.com", 1);
    let next = req.cseq + 1;
    let again = req.cseq(next).header(&format!("Authorization: {auth}"));
    h.send(&again.text())
}

/// Alice registered (her digest answered), at `contact`, for `expires` seconds.
pub fn alice_at(h: &Harness, contact: &str, expires: u32, cseq: u32) -> u16 {
    let req = Register::new("alice@example.com")
        .contact(&format!("<{contact}>;expires={expires}"))
        .cseq(cseq);
    with_digest(h, req, "alice", "wonderland")
}

/// What came back: `code reason`, or `no reply`.
pub fn answer(h: &Harness, text: &str) -> String {
    h.send_raw(text.as_bytes()).map_or_else(
        || "no reply".to_owned(),
        |r| format!("{} {}", r.code, r.reason),
    )
}

/// One test per implementation, each comparing what `$battery` saw with `$expected`.
macro_rules! battery {
    ($battery:ident, $expected:expr) => {
        #[test]
        fn builtin() {
            let mut h = super::builtin();
            assert_eq!($battery(&mut h), $expected, "built-in");
        }

        #[test]
        fn lua() {
            let mut h = super::lua();
            assert_eq!($battery(&mut h), $expected, "Lua");
        }

        #[test]
        fn plugin() {
            let mut h = super::plugin();
            assert_eq!($battery(&mut h), $expected, "plugin");
        }
    };
}
use battery;
