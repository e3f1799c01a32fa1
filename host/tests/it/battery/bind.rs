//! `bind`: may this identity change these bindings, over this transport?

use super::{Harness, battery, register, with_digest};
use sipreg::config::Transport;

fn bind(h: &mut Harness) -> Vec<(&'static str, u16)> {
    let alice = || register("alice@example.com");
    let bob = || register("bob@example.com");
    let mut seen = vec![
        (
            "alice with bob's credentials",
            with_digest(h, alice(), "bob", "builder"),
        ),
        (
            "bob over udp",
            with_digest(h, bob().cseq(10), "bob", "builder"),
        ),
        (
            "alice removes her binding",
            with_digest(h, alice().cseq(20).expires("0"), "alice", "wonderland"),
        ),
    ];
    h.transport = Transport::Tcp;
    seen.push((
        "bob over tcp",
        with_digest(h, bob().cseq(30), "bob", "builder"),
    ));
    seen.push((
        "alice over tcp",
        with_digest(h, alice().cseq(40), "alice", "wonderland"),
    ));
    h.transport = Transport::Udp;
    seen
}

const EXPECTED: [(&str, u16); 5] = [
    ("alice with bob's credentials", 403),
    ("bob over udp", 200),
    ("alice removes her binding", 200),
    ("bob over tcp", 403),
    ("alice over tcp", 200),
];

battery!(bind, EXPECTED.to_vec());
