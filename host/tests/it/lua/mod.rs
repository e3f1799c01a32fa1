//! Lua hooks: every `sip` function and hook from a script (`hooks.rs`), the sandbox and
//! the limits (`sandbox.rs`), hostile scripts against a running server (`wedge.rs`), load
//! errors and reloads (`reload.rs`), the configuration table and the API reference (here).
//! Each test runs a real script in the real states of a core.

mod hooks;
mod http;
mod http_auth;
mod reload;
mod sandbox;
mod wedge;

use crate::support::{Harness, Register, authorization, config, find, logged};

const OPEN: &str = r#"
[server]
listen = ["udp:127.0.0.1:0"]
domains = ["example.com"]

[auth]
challenge = "off"
"#;

const HOOK: &str = r#"
[[hooks]]
type = "lua"
script = "policy.lua"
"#;

/// An open registrar (no auth, no alias list) with `script` as its policy.
fn lua(script: &str) -> Harness {
    Harness::with_files(&format!("{OPEN}{HOOK}"), &[("policy.lua", script)])
}

fn register(aor: &str) -> Register {
    Register::new(aor).contact("<sip:dev@192.0.2.10:5060>")
}

/// Moves a file's modification time forward, so that a change is seen on any clock.
pub fn bump_mtime(h: &Harness, name: &str) {
    let path = h.dir.as_ref().unwrap().path().join(name);
    let f = std::fs::File::options().write(true).open(path).unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    f.set_modified(later).unwrap();
}

#[test]
fn config_table_reaches_the_script() {
    let cfg = format!(
        "{OPEN}{HOOK}config = {{ greeting = \"hello\", limit = 3, list = [\"a\", \"b\"], nested = {{ on = true }} }}\n"
    );
    let h = Harness::with_files(
        &cfg,
        &[(
            "policy.lua",
            r#"
            local c = sip.config()
            return { on_request = function()
              return sip.respond(403, c.greeting .. " " .. c.limit .. " " .. #c.list .. c.list[2] .. " " .. tostring(c.nested.on))
            end }
        "#,
        )],
    );
    assert_eq!(
        h.send(&register("a@example.com").text()).reason,
        "hello 3 2b true"
    );
}

/// The script's hooks come before the built-in ones, which still run when it has no opinion.
#[test]
fn builtin_runs_after_the_script() {
    let cfg = config("off", "").replace("[[aliases]]", &format!("{HOOK}\n[[aliases]]"));
    let h = Harness::with_files(&cfg, &[("policy.lua", "return { bind = function() end }")]);
    assert_eq!(h.send(&register("alice@example.com").text()).code, 200);
    assert_eq!(h.send(&register("nobody@example.com").text()).code, 403);
}

#[test]
fn api_reference_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/lua-api.md");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == sipreg::lua::api_markdown(),
        "docs/lua-api.md is stale: run `cargo run -- lua-api > docs/lua-api.md`"
    );
}

/// `sip.json`: encode and decode round trips, the errors a script can catch, and a huge
/// document paid for from the instruction budget.
#[test]
fn json_encodes_decodes_and_refuses_what_json_cannot_hold() {
    let h = lua(r#"
        local function check(ok, what) if not ok then error("failed: " .. what) end end
        return { on_request = function()
          local j = sip.json
          check(j.encode({ a = 1, b = { true, false, "x" }, c = 1.5 }) == '{"a":1,"b":[true,false,"x"],"c":1.5}', "encode")
          check(j.encode({}) == "{}", "empty table")
          check(j.encode({ [1] = "a", [3] = "c" }) == '{"1":"a","3":"c"}', "sparse keys")
          local t = j.decode([[{"ha1":"abc","n":3,"list":[1,2],"nul":null,"f":2.5,"s":"caf\u00e9"}]])
          check(t.ha1 == "abc" and math.type(t.n) == "integer" and #t.list == 2, "decode")
          check(t.nul == nil and t.f == 2.5 and t.s == "café", "null, float, unicode")
          local loop = {}; loop.self = loop
          local ok, e = pcall(j.encode, loop)
          check(not ok and e:find("nested deeper than 64", 1, true), "cycle: " .. tostring(e))
          ok, e = pcall(j.encode, { f = print })
          check(not ok and e:find("value.f is a function", 1, true), "function: " .. tostring(e))
          ok, e = pcall(j.encode, 0/0)
          check(not ok and e:find("which JSON cannot hold", 1, true), "nan: " .. tostring(e))
          ok, e = pcall(j.decode, "{bad")
          check(not ok and e:find("json.decode", 1, true), "bad text: " .. tostring(e))
          ok, e = pcall(j.decode, string.rep("[", 100) .. string.rep("]", 100))
          check(not ok, "too deep")
          return sip.respond(403, "json ok")
        end }
    "#);
    let mut r = None;
    let lines = logged(|| r = Some(h.send(&register("alice@example.com").text())));
    let r = r.unwrap();
    assert_eq!(
        (r.code, r.reason.as_str()),
        (403, "json ok"),
        "{}",
        lines.join("\n")
    );

    // A document of 100,001 numbers costs 100,002 units: over a budget of 50,000.
    let cfg = format!("{OPEN}{HOOK}instruction_budget = 50000\n");
    let h = Harness::with_files(
        &cfg,
        &[(
            "policy.lua",
            r#"return { on_request = function()
                 local t = sip.json.decode("[" .. string.rep("1,", 100000) .. "1]")
                 return sip.respond(403, "decoded " .. #t)
               end }"#,
        )],
    );
    let lines = logged(|| {
        let r = h.send(&register("alice@example.com").text());
        assert_eq!(r.code, 500, "{}", r.text);
    });
    find(&lines, &["instruction"]);
}
