//! What a script cannot reach, and the memory and instruction limits that fail one
//! request, never the server.

use super::*;

#[test]
fn sandbox() {
    let h = Harness::with_files(
        &format!("{OPEN}{HOOK}"),
        &[
            (
                "policy.lua",
                r#"
                local util = require("lib.util")
                local M = {}
                local probes = {
                  io = function() return io == nil end,
                  os = function() return os.execute == nil and os.getenv == nil and os.remove == nil and type(os.time()) == "number" and type(os.date("%Y")) == "string" end,
                  dofile = function() return dofile == nil and loadfile == nil end,
                  dump = function() return string.dump == nil end,
                  bytecode = function() local f, e = load("\27Lua\84\0", "b", "b") return f == nil end,
                  text = function() return load("return 1 + 1")() == 2 end,
                  debug = function() return debug == nil and package == nil end,
                  require_outside = function() return not pcall(require, "../secret") end,
                  util = function() return util.twice(21) == 42 end,
                  string_mt = function() return getmetatable("") == false end,
                }
                function M.on_request(ctx)
                  local which = sip.header("X-Probe")
                  if which == "global" then leaked = 1 end
                  if which == "library" then string.upper = nil end
                  if which == "rawset" then rawset(_G, "leaked", 1) end
                  if which == "sip" then sip.method = nil end
                  if probes[which] then return sip.respond(403, tostring(probes[which]())) end
                end
                return M
            "#,
            ),
            (
                "lib/util.lua",
                "return { twice = function(x) return 2 * x end }",
            ),
            ("secret.lua", "return {}"),
        ],
    );
    let probe = |p: &str| {
        h.send(
            &register("a@example.com")
                .header(&format!("X-Probe: {p}"))
                .text(),
        )
    };
    for p in [
        "io",
        "os",
        "dofile",
        "dump",
        "bytecode",
        "text",
        "debug",
        "require_outside",
        "util",
        "string_mt",
    ] {
        assert_eq!(probe(p).reason, "true", "probe {p}");
    }
    let lines = logged(|| {
        for p in ["global", "library", "rawset", "sip"] {
            assert_eq!(probe(p).code, 500, "{p}");
        }
    });
    find(
        &lines,
        &["the global table is read-only: cannot set 'leaked'"],
    );
    find(&lines, &["string is read-only: cannot set 'upper'"]);
    find(&lines, &["sip is read-only: cannot set 'method'"]);
    // nothing leaked: the next request sees the same world
    assert_eq!(probe("text").reason, "true");
}

const LIMITED: &str = r#"
[[hooks]]
type = "lua"
script = "policy.lua"
memory_limit_mib = 4
instruction_budget = 2000000
# what trips is the budget, not the clock, however slow a debug build under load is
time_limit_ms = 60000
"#;

#[test]
fn limits_fail_the_request_not_the_server() {
    let h = Harness::with_files(
        &format!("{OPEN}{LIMITED}"),
        &[(
            "policy.lua",
            r#"
            local M = {}
            local calls = 0
            function M.on_request(ctx)
              calls = calls + 1
              local t = sip.header("X-Bomb")
              if t == "loop" then while true do end end
              if t == "pcall-loop" then
                while true do pcall(function() while true do end end) end
              end
              if t == "string" then local s = string.rep("x", 64 * 1024 * 1024) end
              if t == "table" then local a = {} for i = 1, 1e9 do a[i] = i end end
              if t == "pcall-table" then
                for _ = 1, 100 do pcall(function() local a = {} for i = 1, 1e9 do a[i] = {i} end end) end
              end
              if t == "coroutine" then
                local co = coroutine.create(function() while true do end end)
                while true do coroutine.resume(co) end
              end
              if t == "backtrack" then
                return sip.respond(403, tostring(string.find(string.rep("a", 30000), ".-.-.-.-.-.-b")))
              end
              if t == "pcall-backtrack" then
                for _ = 1, 1e6 do pcall(string.match, string.rep("a", 30000), "(.-)*(.-)*b") end
              end
              if t == "gsub" then
                local s = string.gsub(string.rep("x", 100000), "x", string.rep("y", 100))
              end
              if t == "pcall-rep" then
                for _ = 1, 100 do pcall(string.rep, "x", 1e12, ",") end
              end
              if t == "move" then table.move({}, 1, 1e15, 1) end
              if t == "gc" then
                local keep = {} for i = 1, 20000 do keep[i] = {i} end
                while true do collectgarbage() end
              end
              if t == "rep-nothing" then return sip.respond(403, "[" .. string.rep("", 1e15) .. "]") end
              if t == "calls" then return sip.respond(403, tostring(calls)) end
            end
            return M
        "#,
        )],
    );
    let bomb = |t: &str| {
        h.send(
            &register("a@example.com")
                .header(&format!("X-Bomb: {t}"))
                .text(),
        )
    };
    assert_eq!(bomb("calls").reason, "1");
    // Lua's own string.rep loops 1e15 times to copy nothing; ours answers at once.
    assert_eq!(bomb("rep-nothing").reason, "[]");
    for (t, limit) in [
        ("loop", "instruction budget of 2000000 exceeded"),
        ("pcall-loop", "instruction budget of 2000000 exceeded"),
        ("coroutine", "instruction budget of 2000000 exceeded"),
        // Work inside the string library counts too (issue 18, finding 1: on c01b7a9 the
        // first wedged the state at 100 % CPU for good).
        ("backtrack", "instruction budget of 2000000 exceeded"),
        ("pcall-backtrack", "instruction budget of 2000000 exceeded"),
        ("move", "instruction budget of 2000000 exceeded"),
        ("gc", "instruction budget of 2000000 exceeded"),
        ("string", "memory limit of 4 MiB exceeded"),
        ("gsub", "memory limit of 4 MiB exceeded"),
        ("pcall-rep", "memory limit of 4 MiB exceeded"),
        ("table", "memory limit of 4 MiB exceeded"),
        ("pcall-table", "memory limit of 4 MiB exceeded"),
    ] {
        let lines = logged(|| assert_eq!(bomb(t).code, 500, "{t}"));
        let l = find(&lines, &["Lua limit exceeded"]);
        assert!(
            l.contains(limit) && l.contains("policy.lua") && l.contains("on_request"),
            "{t}: {l}"
        );
        // the state was replaced: its counter starts again, and it still answers
        assert_eq!(bomb("calls").code, 403, "after {t}");
        assert_eq!(
            h.send(&register("b@example.com").text()).code,
            200,
            "after {t}"
        );
    }
    // /metrics counts each limit and each failed call of the script's hook.
    let metrics = sipreg::admin::render_metrics(&h.core);
    let value = |parts: &[&str]| {
        let line = metrics
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
            .unwrap_or_else(|| panic!("no {parts:?} in\n{metrics}"));
        line.rsplit(' ').next().unwrap().to_owned()
    };
    let events = "sipreg_hook_events_total{";
    assert_eq!(
        value(&[events, "policy.lua", "instruction_budget_exceeded"]),
        "7"
    );
    assert_eq!(value(&[events, "policy.lua", "memory_limit_exceeded"]), "5");
    let errors = "sipreg_hook_errors_total{hook=\"on_request\"";
    assert_eq!(value(&[errors, "policy.lua"]), "12");
    assert_eq!(value(&[errors, "implementation=\"builtin\""]), "0");
}

/// A call that spends its time outside the VM (here copying megabytes, a handful of
/// instructions a time) meets the time limit long before its instruction budget.
#[test]
fn a_call_that_outlives_its_time_limit_fails() {
    let h = Harness::with_files(
        &format!("{OPEN}[[hooks]]\ntype = \"lua\"\nscript = \"policy.lua\"\ntime_limit_ms = 100\n"),
        &[(
            "policy.lua",
            r#"
            return { on_request = function()
              if sip.header("X-Slow") then while true do local s = string.rep("x", 1e6) end end
            end }
        "#,
        )],
    );
    let started = std::time::Instant::now();
    let lines = logged(|| {
        let r = h.send(&register("a@example.com").header("X-Slow: 1").text());
        assert_eq!(r.code, 500);
    });
    let took = started.elapsed();
    let l = find(&lines, &["Lua limit exceeded"]);
    assert!(l.contains("time limit of 100 ms exceeded"), "{l}");
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    assert_eq!(h.send(&register("a@example.com").text()).code, 200);
    let metrics = sipreg::admin::render_metrics(&h.core);
    assert!(
        metrics.lines().any(|l| l.contains("policy.lua")
            && l.contains("time_limit_exceeded")
            && l.ends_with(" 1")),
        "{metrics}"
    );
}

/// `sip.read_file` reads the script's own folder and the files its config names, nothing
/// else: not `/etc/passwd`, not `../` out of the folder, not a file beside the
/// configuration that the config does not name (issue 18, finding 3; on c01b7a9 it read
/// them all).
#[test]
fn read_file_reads_the_scripts_folder_and_what_its_config_names() {
    let script = r#"
        local seen = {}
        for _, path in ipairs({ "scripts/own.txt", "named.txt", "unnamed.txt", "/etc/passwd",
                                "scripts/../../../../etc/passwd", "scripts/../unnamed.txt" }) do
          local text, err = sip.read_file(path)
          local refused = err and err:find("is neither in the script's folder nor named in its config", 1, true)
          seen[#seen + 1] = text and "read" or (refused and "refused" or err)
        end
        local answer = table.concat(seen, " ")
        return { on_request = function() return sip.respond(403, answer) end }
    "#;
    let toml = format!(
        "{OPEN}[[hooks]]\ntype = \"lua\"\nscript = \"scripts/policy.lua\"\nconfig = {{ file = \"named.txt\" }}\n"
    );
    let h = Harness::with_files(
        &toml,
        &[
            ("scripts/policy.lua", script),
            ("scripts/own.txt", "mine"),
            ("named.txt", "listed"),
            ("unnamed.txt", "secret"),
        ],
    );
    let reason = h.send(&register("a@example.com").text()).reason;
    assert_eq!(reason, "read read refused refused refused refused");
}

/// No finalizer runs script code (Lua runs finalizers with the instruction hook off: a
/// loop in one wedged the state at 100 % CPU for good; issue 18, finding 1). A metatable
/// with `__gc` is refused at `setmetatable`, whatever its value, and a `__gc` added to a
/// metatable afterwards is never called: the request after it is answered.
#[test]
fn no_finalizer_runs_script_code() {
    let h = lua(r#"
        local M = {}
        function M.on_request(ctx)
          local t = sip.header("X-Gc")
          if t == "function" then
            setmetatable({}, { __gc = function() while true do end end })
          elseif t == "true" then
            setmetatable({}, { __gc = true })
          elseif t == "later" then
            local mt = {}
            setmetatable({}, mt)
            mt.__gc = function() while true do end end
            collectgarbage("collect")
            return sip.respond(403, "collected")
          end
        end
        return M
    "#);
    let gc = |t: &str| {
        h.send(
            &register("a@example.com")
                .header(&format!("X-Gc: {t}"))
                .text(),
        )
    };
    for t in ["function", "true"] {
        let lines = logged(|| assert_eq!(gc(t).code, 500, "{t}"));
        find(&lines, &["__gc finalizers are not allowed"]);
    }
    assert_eq!(gc("later").reason, "collected");
    // and the load: a script that sets one up while it loads is refused with the line
    let e = Harness::try_with_files(
        &format!("{OPEN}{HOOK}"),
        &[(
            "policy.lua",
            "\nsetmetatable({}, { __gc = print })\nreturn {}\n",
        )],
    )
    .err()
    .expect("refused");
    assert!(
        e.contains("policy.lua:2:") && e.contains("__gc finalizers are not allowed"),
        "{e}"
    );
}

/// `sip.kv` is inside the script's limits (issue 18, finding 2: 200 values of 1 MiB per
/// REGISTER grew the process by ~570 MiB in three REGISTERs): a value over
/// `kv_max_value_bytes`, a key over `kv_max_keys` and bytes over `kv_max_bytes` raise in
/// the script, and /metrics counts them.
#[test]
fn kv_writes_over_the_scripts_quota_raise_and_are_counted() {
    let script = r#"
        local M = {}
        function M.on_request(ctx)
          local t = sip.header("X-Kv")
          local ok, err
          if t == "big" then
            ok, err = pcall(sip.kv.set, "big", string.rep("x", 1024 * 1024))
          elseif t == "keys" then
            for i = 1, 4 do
              ok, err = pcall(sip.kv.set, "k" .. i, i)
              if not ok then break end
            end
          elseif t == "bytes" then
            for i = 1, 3 do
              ok, err = pcall(sip.kv.set, "k1", string.rep("y", 30000))
              ok, err = pcall(sip.kv.set, "k2", string.rep("y", 30000))
            end
          end
          return sip.respond(403, ok and "stored" or err)
        end
        return M
    "#;
    let toml =
        format!("{OPEN}{HOOK}kv_max_keys = 3\nkv_max_bytes = 50000\nkv_max_value_bytes = 40000\n");
    let h = Harness::with_files(&toml, &[("policy.lua", script)]);
    let kv = |t: &str| {
        h.send(
            &register("a@example.com")
                .header(&format!("X-Kv: {t}"))
                .text(),
        )
        .reason
    };
    // (pcall's message starts with where the sandbox called the function)
    let big = kv("big");
    let over_value =
        "sip.kv.set: over quota: a value of 1048576 bytes is over kv_max_value_bytes (40000)";
    assert!(big.ends_with(over_value), "{big}");
    let keys = kv("keys");
    let over_keys = "sip.kv.set: over quota: the script holds kv_max_keys (3) keys";
    assert!(keys.ends_with(over_keys), "{keys}");
    let bytes = kv("bytes");
    assert!(
        bytes.contains("sip.kv.set: over quota: the script holds"),
        "{bytes}"
    );
    let metrics = sipreg::admin::render_metrics(&h.core);
    let line = metrics
        .lines()
        .find(|l| l.contains("sipreg_hook_events_total{") && l.contains("kv_over_quota"))
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(
        line.ends_with(" 5"),
        "one value, one key, three byte refusals: {line}"
    );
}
