//! The algorithms of `authenticate`'s challenge: quinn is offered SHA-256 and MD5 (the
//! built-in one from her `[[aliases]] algorithms`, the hooks by choosing them), alice the
//! configured MD5 alone. A device's answer is held to what its challenge offered, and a
//! wrong one is challenged with the same algorithms again.

use super::{Harness, battery};
use crate::support::{Register, Reply, authorization, challenge_param};

/// The code and the algorithms of a reply's challenges, in order.
fn offered(r: &Reply) -> String {
    let algorithms: Vec<&str> = r
        .all("WWW-Authenticate")
        .into_iter()
        .map(|c| challenge_param(c, "algorithm").unwrap_or("none"))
        .collect();
    format!("{} {}", r.code, algorithms.join(","))
}

fn quinn(cseq: u32) -> Register {
    Register::new("quinn@example.com")
        .contact("<sip:quinn@192.0.2.22:5060>")
        .cseq(cseq)
}

fn alice(cseq: u32) -> Register {
    Register::new("alice@example.com")
        .contact("<sip:alice@192.0.2.12:5060>")
        .cseq(cseq)
}

/// `req` challenged, then answered as `user`/`password` to the challenge of algorithm
/// `algorithm` (a challenge of another algorithm rewritten to it, when none was offered).
fn answer(h: &Harness, req: Register, user: &str, password: &str, algorithm: &str) -> Reply {
    let r = h.send(&req.clone().text());
    let all = r.all("WWW-Authenticate");
    let challenge = all
        .iter()
        .find(|c| challenge_param(c, "algorithm") == Some(algorithm))
        .map_or_else(
            || all[0].replace("algorithm=MD5", &format!("algorithm={algorithm}")),
            |c| c.to_string(),
        );
    let auth = authorization(&challenge, user, password, "sip:example.com", 1);
    let next = req.cseq + 1;
    h.send(
        &req.cseq(next)
            .header(&format!("Authorization: {auth}"))
            .text(),
    )
}

fn algorithms(h: &mut Harness) -> Vec<(&'static str, String)> {
    vec![
        ("quinn, no credentials", offered(&h.send(&quinn(1).text()))),
        ("alice, no credentials", offered(&h.send(&alice(1).text()))),
        (
            "quinn answers SHA-256",
            offered(&answer(h, quinn(10), "quinn", "quinn-pw", "SHA-256")),
        ),
        (
            "quinn answers MD5",
            offered(&answer(h, quinn(20), "quinn", "quinn-pw", "MD5")),
        ),
        (
            "quinn, wrong password",
            offered(&answer(h, quinn(30), "quinn", "nope", "SHA-256")),
        ),
        (
            "alice answers SHA-256, not offered",
            offered(&answer(h, alice(40), "alice", "wonderland", "SHA-256")),
        ),
        (
            "alice answers MD5",
            offered(&answer(h, alice(50), "alice", "wonderland", "MD5")),
        ),
    ]
}

const EXPECTED: [(&str, &str); 7] = [
    ("quinn, no credentials", "401 SHA-256,MD5"),
    ("alice, no credentials", "401 MD5"),
    ("quinn answers SHA-256", "200 "),
    ("quinn answers MD5", "200 "),
    ("quinn, wrong password", "401 SHA-256,MD5"),
    ("alice answers SHA-256, not offered", "401 MD5"),
    ("alice answers MD5", "200 "),
];

fn expected() -> Vec<(&'static str, String)> {
    EXPECTED
        .iter()
        .map(|(k, v)| (*k, (*v).to_owned()))
        .collect()
}

battery!(algorithms, expected());
