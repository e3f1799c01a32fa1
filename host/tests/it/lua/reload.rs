//! Load errors with file and line, reloads that swap a good script in and keep the old
//! one for a broken one, and the files a load read, watched.

use super::*;

#[test]
fn load_errors_name_file_and_line() {
    let cfg = format!("{OPEN}{HOOK}");
    let err = |script: &str| {
        Harness::try_with_files(&cfg, &[("policy.lua", script)])
            .err()
            .expect("a load error")
    };
    let e = err("local M = {}\nfunction M.bind(ctx)\n  return = 1\nend\nreturn M\n");
    assert!(e.contains("policy.lua:3:"), "{e}");
    let e = err("local x = nil\nlocal y = x.field\nreturn {}\n");
    assert!(
        e.contains("policy.lua:2:") && e.contains("attempt to index"),
        "{e}"
    );
    let e = err("return 42\n");
    assert!(e.contains("must return a table"), "{e}");
    let e = err("return { on_requst = function() end }\n");
    assert!(e.contains("`on_requst`, which is not a hook"), "{e}");
    let e = err("local x = sip.read_file('missing.txt')\nreturn { bind = 1 }\n");
    assert!(e.contains("`bind` must be a function"), "{e}");
    let e = err("\nwhile true do end\n");
    assert!(e.contains("instruction budget"), "{e}");
    let e = err("local m = require('nothere')\nreturn {}\n");
    assert!(
        e.contains("policy.lua:1:") && e.contains("module 'nothere' not found"),
        "{e}"
    );
}

#[test]
fn reload_swaps_in_a_good_script_and_refuses_a_broken_one() {
    let h = lua("return { on_request = function() return sip.respond(403, 'one') end }");
    let reason = || h.send(&register("a@example.com").text()).reason;
    assert_eq!(reason(), "one");
    let script = &h.scripts[0];
    assert!(!script.changed());
    // a new modification time even on a coarse clock
    std::thread::sleep(std::time::Duration::from_millis(20));
    h.write(
        "policy.lua",
        "return { on_request = function() return sip.respond(403, 'two') end }",
    );
    bump_mtime(&h, "policy.lua");
    assert!(script.changed());
    script.reload().unwrap();
    assert!(!script.changed());
    assert_eq!(reason(), "two");
    h.write(
        "policy.lua",
        "return { on_request = function() return sip.respond(403, 'three' end }",
    );
    bump_mtime(&h, "policy.lua");
    let lines = logged(|| {
        let e = script.reload().unwrap_err();
        assert!(e.to_string().contains("policy.lua:1:"), "{e}");
    });
    find(
        &lines,
        &[
            "script refused; the previous version keeps serving",
            "policy.lua:1:",
        ],
    );
    assert_eq!(reason(), "two");
    assert!(!script.changed(), "a refused save is tried once");
}

#[test]
fn files_read_at_load_are_watched() {
    let h = Harness::with_files(
        &format!("{OPEN}{HOOK}"),
        &[
            (
                "policy.lua",
                r#"
                local text = sip.read_file("flag.txt") or "absent"
                return { on_request = function() return sip.respond(403, text) end }
            "#,
            ),
            ("flag.txt", "first"),
        ],
    );
    assert_eq!(h.send(&register("a@example.com").text()).reason, "first");
    h.write("flag.txt", "second");
    bump_mtime(&h, "flag.txt");
    assert!(h.scripts[0].changed());
    h.scripts[0].reload().unwrap();
    assert_eq!(h.send(&register("a@example.com").text()).reason, "second");
}
