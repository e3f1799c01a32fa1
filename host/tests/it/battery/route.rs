//! `route`: where a request that is not for the registrar goes, outside a dialog.

use super::{Harness, answer, battery, register, with_digest};

fn route(h: &mut Harness) -> Vec<(&'static str, String)> {
    let bob = register("bob@example.com");
    assert_eq!(with_digest(h, bob, "bob", "builder"), 200, "bob registered");
    let forwarded = |to: &str| {
        let out = h.output(crate::proxy::invite(to, "").as_bytes());
        match out.forward {
            Some(f) => {
                let text = String::from_utf8_lossy(&f.bytes).into_owned();
                format!("to {}: {}", f.to.addr, text.lines().next().unwrap_or(""))
            }
            None => format!(
                "not forwarded: {}",
                String::from_utf8_lossy(&out.reply)
                    .lines()
                    .next()
                    .unwrap_or("")
            ),
        }
    };
    vec![
        ("support goes to bob", forwarded("support@example.com")),
        ("bob himself", forwarded("bob@example.com")),
        (
            "closed",
            answer(h, &crate::proxy::invite("closed@example.com", "")),
        ),
    ]
}

fn expected() -> Vec<(&'static str, String)> {
    [
        (
            "support goes to bob",
            "to 192.0.2.10:5060: INVITE sip:bob@192.0.2.10:5060 SIP/2.0",
        ),
        (
            "bob himself",
            "to 192.0.2.10:5060: INVITE sip:bob@192.0.2.10:5060 SIP/2.0",
        ),
        ("closed", "480 Closed"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

battery!(route, expected());
