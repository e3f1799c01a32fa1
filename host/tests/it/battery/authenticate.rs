//! `authenticate`: who sends a REGISTER (and what credentials the digest check uses).

use super::{Harness, battery, register, with_digest};

fn authenticate(h: &mut Harness) -> Vec<(&'static str, u16)> {
    let alice = || register("alice@example.com");
    vec![
        ("alice, no credentials", h.send(&alice().text()).code),
        (
            "alice, right password",
            with_digest(h, alice().cseq(10), "alice", "wonderland"),
        ),
        (
            "alice, wrong password",
            with_digest(h, alice().cseq(20), "alice", "nope"),
        ),
        (
            "unknown user name",
            with_digest(h, alice().cseq(30), "eve", "x"),
        ),
        (
            "unknown alias",
            h.send(&register("mallory@example.com").text()).code,
        ),
        (
            "alice in capitals",
            with_digest(
                h,
                register("alice@EXAMPLE.com").cseq(40),
                "alice",
                "wonderland",
            ),
        ),
    ]
}

const EXPECTED: [(&str, u16); 6] = [
    ("alice, no credentials", 401),
    ("alice, right password", 200),
    ("alice, wrong password", 401),
    ("unknown user name", 401),
    ("unknown alias", 403),
    ("alice in capitals", 200),
];

battery!(authenticate, EXPECTED.to_vec());
