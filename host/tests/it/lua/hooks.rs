//! Every hook and `sip` function from a script: the request, decisions, `ctx.vars`,
//! `sip.kv`, `sip.location`, `expire`, `route`, log lines, and the phases a function may
//! be called in.

use super::*;

#[test]
fn request_fields() {
    let h = lua(r#"
        local M = {}
        function M.on_request(ctx)
          local from, to = sip.from(), sip.to()
          local c = sip.contacts()
          local ip, port = sip.source()
          local n, m = sip.cseq()
          return sip.respond(403, "Fields", {
            ["X-Method"] = sip.method(),
            ["X-RURI"] = sip.request_uri(),
            ["X-From"] = from.user .. "@" .. from.host .. " tag=" .. from.tag .. " name=" .. from.display_name,
            ["X-To"] = to.uri .. " tag=" .. tostring(to.tag),
            ["X-Call-ID"] = sip.call_id(),
            ["X-CSeq"] = n .. " " .. m,
            ["X-Contacts"] = #c .. " " .. c[1].uri .. " q=" .. c[1].q .. " exp=" .. c[1].expires
                .. " inst=" .. c[1].params["+sip.instance"] .. " regid=" .. c[1].params["reg-id"]
                .. " | " .. c[2].uri .. " name=" .. c[2].display_name .. " flag=" .. tostring(c[2].params.flag),
            ["X-Header"] = sip.header("x-custom") .. "," .. #sip.headers("X-Custom") .. "," .. sip.header("i"),
            ["X-None"] = tostring(sip.header("X-Absent")) .. "," .. #sip.headers("X-Absent"),
            ["X-UA"] = sip.user_agent(),
            ["X-Source"] = ip .. ":" .. port .. "/" .. sip.transport(),
          })
        end
        return M
    "#);
    let req = Register::new("alice@example.com")
        .contact(r#"<sip:a@192.0.2.10:5070>;q=0.5;expires=300;+sip.instance="<urn:uuid:0000-1>";reg-id=1"#)
        .contact(r#""Desk Phone" <sip:b@192.0.2.10>;flag"#)
        .header("X-Custom: one")
        .header("X-Custom: two")
        .header("User-Agent: TestPhone/1.0")
        .text()
        .replace("From: <sip:alice@example.com>", "From: \"Alice A\" <sip:alice@example.com>");
    let r = h.send(&req);
    assert_eq!((r.code, r.reason.as_str()), (403, "Fields"));
    assert_eq!(r.header("X-Method"), Some("REGISTER"));
    assert_eq!(r.header("X-RURI"), Some("sip:example.com"));
    assert_eq!(
        r.header("X-From"),
        Some("alice@example.com tag=ft1 name=Alice A")
    );
    assert_eq!(r.header("X-To"), Some("sip:alice@example.com tag=nil"));
    assert_eq!(r.header("X-Call-ID"), Some("cid-alice@example.com"));
    assert_eq!(r.header("X-CSeq"), Some("1 REGISTER"));
    assert_eq!(
        r.header("X-Contacts"),
        Some(
            "2 sip:a@192.0.2.10:5070 q=0.5 exp=300 inst=<urn:uuid:0000-1> regid=1 | sip:b@192.0.2.10 name=Desk Phone flag=true"
        )
    );
    assert_eq!(r.header("X-Header"), Some("one,2,cid-alice@example.com"));
    assert_eq!(r.header("X-None"), Some("nil,0"));
    assert_eq!(r.header("X-UA"), Some("TestPhone/1.0"));
    assert_eq!(r.header("X-Source"), Some("192.0.2.10:5060/udp"));
}

#[test]
fn wildcard_and_malformed_contacts() {
    let h = lua(r#"
        return { on_request = function(ctx)
          local c, why = sip.contacts()
          if c == nil then return sip.respond(400, "Script saw: " .. why) end
          return sip.respond(403, "n=" .. #c .. " w=" .. tostring(c[1] and c[1].wildcard))
        end }
    "#);
    let r = h.send(
        &Register::new("a@example.com")
            .contact("*")
            .expires("0")
            .text(),
    );
    assert_eq!(r.reason, "n=1 w=true");
    let r = h.send(&Register::new("a@example.com").text());
    assert_eq!(r.reason, "n=0 w=nil");
    let r = h.send(&Register::new("a@example.com").contact("<sip:x@y").text());
    assert_eq!(r.code, 400);
    assert!(r.reason.starts_with("Script saw: "), "{}", r.reason);
}

#[test]
fn decisions_of_on_request() {
    let h = lua(r#"
        local M = {}
        function M.on_request(ctx)
          local t = sip.header("X-Test")
          if t == "respond" then return sip.respond(503, "Maintenance", {["Retry-After"] = 300}) end
          if t == "drop" then return sip.drop() end
          if t == "continue" then return sip.CONTINUE end
          if t == "bad-code" then return sip.respond(200, "OK") end
          if t == "bad-header" then return sip.respond(403, "x", {Via = "x"}) end
          if t == "auth-header" then return sip.respond(403, "x", {["WWW-Authenticate"] = "Digest x"}) end
          if t == "contact-header" then return sip.respond(403, "x", {Contact = "<sip:x@y>"}) end
          if t == "nul-header" then return sip.respond(403, "x", {["X-Note"] = "a\0b"}) end
          if t == "redirect" then return sip.respond(302, "Moved", {Contact = "<sip:a@192.0.2.9>"}) end
          if t == "number" then return 42 end
          if t == "challenge" then return sip.challenge() end
          return nil
        end
        return M
    "#);
    let with = |v: &str| {
        register("a@example.com")
            .header(&format!("X-Test: {v}"))
            .text()
    };
    let r = h.send(&with("respond"));
    assert_eq!((r.code, r.reason.as_str()), (503, "Maintenance"));
    assert_eq!(r.header("Retry-After"), Some("300"));
    assert!(h.send_raw(with("drop").as_bytes()).is_none());
    assert_eq!(h.send(&with("continue")).code, 200);
    assert_eq!(h.send(&register("b@example.com").text()).code, 200);
    let lines = logged(|| {
        for bad in [
            "bad-code",
            "bad-header",
            "auth-header",
            "contact-header",
            "nul-header",
            "number",
            "challenge",
        ] {
            assert_eq!(h.send(&with(bad)).code, 500, "{bad}");
        }
    });
    find(&lines, &["WWW-Authenticate is written by the registrar"]);
    find(&lines, &["Contact is written by the registrar"]);
    find(&lines, &["the value of X-Note holds CR, LF or NUL"]);
    // a redirection names its targets in Contact
    let r = h.send(&with("redirect"));
    assert_eq!(
        (r.code, r.header("Contact")),
        (302, Some("<sip:a@192.0.2.9>"))
    );
    find(
        &lines,
        &[
            "hook failed",
            "on_request",
            "code 200 is not a final refusal",
        ],
    );
    find(&lines, &["Via is written by the registrar"]);
    find(&lines, &["on_request returned a number"]);
    find(
        &lines,
        &["on_request returned sip.challenge(), which only authenticate may return"],
    );
}

fn auth() -> String {
    crate::support::conf(
        "configs/example.com.toml",
        "[auth]\nalgorithms = [\"SHA-256\", \"MD5\"]\n\n[[hooks]]\ntype = \"lua\"\nscript = \"policy.lua\"\n",
    )
}

/// Digest with credentials from the script: a password, an HA1 (MD5 and SHA-256), and an
/// identity vouched for without digest.
#[test]
fn authenticate_decisions() {
    let ha1_md5 = crate::support::md5_hex("erin:example.com:erinpw");
    let ha1_sha = crate::support::sha256_hex("fred:example.com:fredpw");
    let script = format!(
        r#"
        local M = {{}}
        function M.authenticate(ctx)
          if ctx.aor == "trusted@example.com" then return sip.authenticated("trusted") end
          if ctx.aor == "nobody@example.com" then return sip.respond(404, "Alias not found") end
          if ctx.username == nil then return sip.challenge() end
          if ctx.username == "dave" then return sip.credentials{{username = "dave", password = "davepw"}} end
          if ctx.username == "erin" then return sip.credentials{{username = "erin", ha1 = "{ha1_md5}"}} end
          if ctx.username == "fred" then return sip.credentials{{username = "fred", ha1 = "{ha1_sha}"}} end
          return sip.challenge()
        end
        function M.bind(ctx)
          -- the authenticated user must own the alias
          if ctx.identity .. "@example.com" ~= ctx.aor then return sip.respond(403, "Not yours") end
          return sip.accept()
        end
        return M
    "#
    );
    let h = Harness::with_files(&auth(), &[("policy.lua", &script)]);
    assert_eq!(h.send(&register("trusted@example.com").text()).code, 200);
    assert_eq!(h.send(&register("nobody@example.com").text()).code, 404);
    for (user, pw, alg_index) in [
        ("dave", "davepw", 0),
        ("erin", "erinpw", 1),
        ("fred", "fredpw", 0),
    ] {
        let aor = format!("{user}@example.com");
        let r = h.send(&register(&aor).text());
        assert_eq!(r.code, 401, "{user}");
        let challenge = r.all("WWW-Authenticate")[alg_index].to_owned();
        let auth = authorization(&challenge, user, pw, "sip:example.com", 1);
        let r = h.send(
            &register(&aor)
                .cseq(2)
                .header(&format!("Authorization: {auth}"))
                .text(),
        );
        assert_eq!(r.code, 200, "{user}: {}", r.text);
        let wrong = authorization(&challenge, user, "wrong", "sip:example.com", 2);
        let r = h.send(
            &register(&aor)
                .cseq(3)
                .header(&format!("Authorization: {wrong}"))
                .text(),
        );
        assert_eq!(r.code, 401, "{user} with a wrong password");
    }
    // dave's credentials for erin's alias: authenticated, then refused by bind
    let r = h.send(&register("erin@example.com").cseq(10).text());
    let challenge = r.all("WWW-Authenticate")[0].to_owned();
    let auth = authorization(&challenge, "dave", "davepw", "sip:example.com", 1);
    let r = h.send(
        &register("erin@example.com")
            .cseq(11)
            .header(&format!("Authorization: {auth}"))
            .text(),
    );
    assert_eq!((r.code, r.reason.as_str()), (403, "Not yours"));
}

#[test]
fn bind_sees_and_changes_bindings() {
    let h = lua(r#"
        local M = {}
        function M.bind(ctx)
          local b = ctx.bindings[1]
          if ctx.kind ~= "update" then return sip.respond(403, "kind " .. ctx.kind) end
          b.expires = math.min(b.expires, 120)
          b.q = 0.25
          if sip.header("X-Go") then return sip.accept() end
          return sip.respond(b.new and 302 or 301, "Seen", {
            ["X-Binding"] = table.concat({ctx.aor, b.aor, b.contact, b.instance, b.reg_id,
              b.source, b.transport, tostring(ctx.identity)}, " "),
            ["X-Id"] = b.registration_id,
          })
        end
        return M
    "#);
    let c = r#"<sip:dev@192.0.2.10:5060>;+sip.instance="<urn:uuid:1>";reg-id=2"#;
    let r = h.send(&Register::new("a@example.com").contact(c).text());
    assert_eq!(r.code, 302, "{}", r.text);
    assert_eq!(
        r.header("X-Binding"),
        Some(
            r#"a@example.com a@example.com <sip:dev@192.0.2.10:5060>;+sip.instance="<urn:uuid:1>";reg-id=2 <urn:uuid:1> 2 192.0.2.10:5060 udp nil"#
        )
    );
    let lines = logged(|| {
        let r = h.send(
            &Register::new("a@example.com")
                .contact(c)
                .header("X-Go: 1")
                .cseq(2)
                .text(),
        );
        assert_eq!(r.code, 200);
        assert_eq!(
            r.contact_expires(),
            vec![("sip:dev@192.0.2.10:5060".to_owned(), 120)]
        );
        assert!(
            r.header("Contact").unwrap().ends_with(";q=0.25"),
            "{}",
            r.text
        );
    });
    let added = find(&lines, &["Registration added"]);
    // the id bind saw for the new binding is the one it got
    let r = h.send(&Register::new("a@example.com").contact(c).cseq(3).text());
    assert_eq!(r.code, 301, "an existing binding is not new");
    let id = r.header("X-Id").unwrap();
    assert!(added.contains(id), "{id} not in {added}");
}

#[test]
fn bind_values_are_checked() {
    let h = lua(r#"
        return { bind = function(ctx)
          ctx.bindings[1].q = tonumber(sip.header("X-Q"))
          ctx.bindings[1].expires = tonumber(sip.header("X-E"))
        end }
    "#);
    let send = |q: &str, e: &str| {
        h.send(
            &register("a@example.com")
                .header(&format!("X-Q: {q}"))
                .header(&format!("X-E: {e}"))
                .text(),
        )
        .code
    };
    assert_eq!(send("1", "60"), 200);
    assert_eq!(send("1.5", "60"), 500);
    assert_eq!(send("0.5", "-1"), 500);
    assert_eq!(send("0.5", "1.5"), 500);
}

#[test]
fn bind_limits_and_reply_headers_are_checked() {
    let h = lua(r#"
        local cases = {
          contact = function(ctx) ctx.reply_headers = { Contact = "<sip:x@192.0.2.1>" } end,
          expires = function(ctx) ctx.reply_headers = { Expires = "5" } end,
          crlf = function(ctx) ctx.reply_headers = { ["X-A"] = "a\r\nInjected: yes" } end,
          notable = function(ctx) ctx.reply_headers = "X-A: b" end,
          typo = function(ctx) ctx.limits = { max_contact = 1 } end,
          zero = function(ctx) ctx.limits = { max_contacts = 0 } end,
          evict = function(ctx) ctx.limits = { evict = "newest" } end,
          contradiction = function(ctx) ctx.limits = { min_expires = 500, max_expires = 100 } end,
          list = function(ctx)
            ctx.reply_headers = { ["P-Associated-URI"] = { "<sip:a@example.com>", "<tel:+15551234>" } }
          end,
          longer = function(ctx) ctx.limits = { max_expires = 7200 } end,
          shorter = function(ctx)
            ctx.limits = { max_expires = 7200 }
            ctx.bindings[1].expires = 100
          end,
        }
        return { bind = function(ctx) cases[sip.header("X-Case")](ctx) end }
    "#);
    let send = |case: &str, expires: &str, cseq: u32| {
        h.send(
            &register("a@example.com")
                .expires(expires)
                .cseq(cseq)
                .header(&format!("X-Case: {case}"))
                .text(),
        )
    };
    for (i, case) in [
        "contact",
        "expires",
        "crlf",
        "notable",
        "typo",
        "zero",
        "evict",
        "contradiction",
    ]
    .into_iter()
    .enumerate()
    {
        let r = send(case, "600", 10 + i as u32);
        assert_eq!(r.code, 500, "{case}");
        assert!(r.header("Injected").is_none());
    }
    let r = send("list", "600", 30);
    assert_eq!(r.code, 200);
    assert_eq!(
        r.all("P-Associated-URI"),
        ["<sip:a@example.com>", "<tel:+15551234>"]
    );
    // [registrar] max_expires is 3600: this AOR's own maximum lets the asked 5000 stand,
    // and an expiry the hook lowered stays lowered
    let r = send("longer", "5000", 31);
    assert_eq!(r.contact_expires()[0].1, 5000);
    let r = send("shorter", "5000", 32);
    assert_eq!(r.contact_expires()[0].1, 100);
}

#[test]
fn vars_are_shared_by_the_hooks_of_one_request_only() {
    let h = lua(r#"
        local M = {}
        function M.on_request(ctx)
          if ctx.vars.n ~= nil then return sip.respond(500, "leaked") end
          ctx.vars.n = 1
          ctx.vars.who = sip.from().user
        end
        function M.authenticate(ctx)
          ctx.vars.n = ctx.vars.n + 1
        end
        function M.bind(ctx)
          return sip.respond(403, ctx.vars.who .. " " .. ctx.vars.n)
        end
        return M
    "#);
    assert_eq!(h.send(&register("a@example.com").text()).reason, "a 2");
    assert_eq!(h.send(&register("b@example.com").text()).reason, "b 2");
}

#[test]
fn vars_hold_only_plain_values() {
    let h = lua(r#"return { on_request = function(ctx) ctx.vars.t = {} end }"#);
    let lines = logged(|| assert_eq!(h.send(&register("a@example.com").text()).code, 500));
    find(&lines, &["ctx.vars.t: a table cannot be kept"]);
}

#[test]
fn kv_location_and_expire() {
    let h = lua(r#"
        local M = {}
        function M.on_request(ctx)
          local q = sip.header("X-Query")
          if q == "kv" then
            sip.kv.set("flag", "on")
            sip.kv.set("short", true, 1)
            local n = sip.kv.incr("count")
            n = sip.kv.incr("count", 10)
            return sip.respond(403, table.concat({tostring(sip.kv.get("flag")), tostring(sip.kv.get("short")),
              n, tostring(sip.kv.delete("flag")), tostring(sip.kv.get("flag")), tostring(sip.kv.delete("flag"))}, " "))
          elseif q == "location" then
            local l = sip.location("a@example.com")
            local b = l[1]
            return sip.respond(403, #l .. " " .. b.contact .. " " .. b.expires .. " " .. b.transport .. " " .. tostring(b.natted))
          elseif q == "expired" then
            return sip.respond(403, tostring(sip.kv.get("gone")))
          end
        end
        function M.expire(ctx)
          local b = ctx.binding
          sip.kv.set("gone", b.aor .. " " .. b.contact .. " " .. b.reason .. " " .. b.expires)
        end
        return M
    "#);
    let ask = |q: &str| {
        h.send(
            &Register::new("x@example.com")
                .header(&format!("X-Query: {q}"))
                .text(),
        )
        .reason
    };
    assert_eq!(ask("kv"), "on true 11 true nil false");
    assert_eq!(
        h.send(&register("a@example.com").expires("600").text())
            .code,
        200
    );
    assert_eq!(ask("location"), "1 <sip:dev@192.0.2.10:5060> 600 udp false");
    assert_eq!(ask("expired"), "nil");
    assert_eq!(
        h.send(&register("a@example.com").expires("0").cseq(2).text())
            .code,
        200
    );
    assert_eq!(
        ask("expired"),
        "a@example.com <sip:dev@192.0.2.10:5060> unregistered 0"
    );
}

#[test]
fn route_answers_other_methods() {
    let h = lua(r#"
        return { route = function(ctx)
          if sip.method() == "MESSAGE" then
            return sip.respond(480, "Offline via " .. table.concat(sip.route_set(), " "))
          end
          if sip.method() == "SUBSCRIBE" then return sip.targets("not a uri") end
          return sip.targets("sip:bob@192.0.2.1", {"sip:bob@192.0.2.2"})
        end }
    "#);
    let msg = |m: &str| {
        format!(
            "{m} sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-r\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: r1\r\nCSeq: 1 {m}\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // a preloaded route set naming us (folded over two lines)
    let preloaded = msg("MESSAGE").replace(
        "Max-Forwards",
        "Route: <sip:example.com;lr>,\r\n <sip:EXAMPLE.com;lr>\r\nMax-Forwards",
    );
    let r = h.send(&preloaded);
    assert_eq!(
        (r.code, r.reason.as_str()),
        (480, "Offline via <sip:example.com;lr> <sip:EXAMPLE.com;lr>")
    );
    // the first target is where the request goes
    let f = h.forwarded(&msg("INVITE"));
    assert_eq!(f.to.addr, "192.0.2.1:5060".parse().unwrap());
    assert!(String::from_utf8_lossy(&f.bytes).starts_with("INVITE sip:bob@192.0.2.1 SIP/2.0\r\n"));
    let lines = logged(|| assert_eq!(h.send(&msg("SUBSCRIBE")).code, 500));
    find(
        &lines,
        &["hook failed", "route", "sip.targets: \"not a uri\""],
    );
}

#[test]
fn log_lines_carry_script_hook_and_fields() {
    let script = r#"
        print("loaded", 1)
        return { on_request = function(ctx)
          sip.log.info("Registration seen", {Alias = sip.to().user, Protocol = "SIP"})
          sip.log.warn("careful")
          sip.log.error("broken", {n = 1})
          sip.log.debug("hidden at info level")
        end }
    "#;
    let lines = logged(|| {
        let h = lua(script);
        h.send(&register("a@example.com").text());
    });
    let l = find(&lines, &["Registration seen"]);
    assert!(
        l.contains("sipreg::script")
            && l.contains("hook=\"on_request\"")
            && l.contains("policy.lua"),
        "{l}"
    );
    assert!(l.contains(r#"fields=Alias="a" Protocol="SIP""#), "{l}");
    find(&lines, &["WARN", "careful"]);
    find(&lines, &["ERROR", "broken", "fields=n=\"1\""]);
    assert!(!lines.iter().any(|l| l.contains("hidden at info level")));
    find(&lines, &["INFO", "loaded\t1", "hook=\"load\""]);
}

#[test]
fn functions_refuse_the_wrong_hook() {
    let h = lua(r#"
        local M = {}
        local ok, err = pcall(sip.method)
        local at_load = err -- a string: sip errors caught by pcall are messages
        function M.on_request(ctx)
          if sip.header("X-T") == "load" then return sip.respond(403, at_load) end
          if sip.header("X-T") == "read" then sip.read_file("x") end
          if sip.header("X-T") == "require" then require("x") end
        end
        return M
    "#);
    let t = |v: &str| {
        register("a@example.com")
            .header(&format!("X-T: {v}"))
            .text()
    };
    let r = h.send(&t("load"));
    assert!(r.reason.contains("sip.method may be called from on_request, authenticate, bind, route; not while the script loads"), "{}", r.reason);
    let lines = logged(|| {
        assert_eq!(h.send(&t("read")).code, 500);
        assert_eq!(h.send(&t("require")).code, 500);
    });
    find(
        &lines,
        &["sip.read_file may be called from the script's load; not from on_request"],
    );
    find(&lines, &["require: modules are loaded with the script"]);
}
