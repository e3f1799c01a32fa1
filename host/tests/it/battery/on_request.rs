//! `on_request`: every request, REGISTER or not, before the registrar or the proxy.

use super::{Harness, answer, battery, register};

fn on_request(h: &mut Harness) -> Vec<(&'static str, String)> {
    let reg = |x: &str| {
        register("alice@example.com")
            .header(&format!("X-Test: {x}"))
            .text()
    };
    vec![
        ("register, maintenance", answer(h, &reg("maintenance"))),
        ("register, drop", answer(h, &reg("drop"))),
        ("register, fail", answer(h, &reg("fail"))),
        ("register, nothing asked", answer(h, &reg("none"))),
        (
            "invite, maintenance",
            answer(
                h,
                &crate::proxy::invite("bob@example.com", "X-Test: maintenance\r\n"),
            ),
        ),
    ]
}

fn expected() -> Vec<(&'static str, String)> {
    [
        ("register, maintenance", "503 Maintenance"),
        ("register, drop", "no reply"),
        ("register, fail", "500 Server Internal Error"),
        ("register, nothing asked", "401 Unauthorized"),
        ("invite, maintenance", "503 Maintenance"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

battery!(on_request, expected());
