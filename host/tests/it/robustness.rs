//! Bad input never panics and never yields a malformed reply: every RFC 4475 message and a
//! REGISTER, mutated many times with a fixed seed (byte flips, truncations, inserted
//! separators and characters of several bytes), go through the core.

use crate::support::{Harness, Register, config};
use sipreg::core::Output;

/// A small deterministic generator (xorshift64*), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SPECIAL: &[u8] = b"\r\n:;,<>\"@=?% \t\\\x00\xff";

/// Characters of more than one byte in UTF-8: a parser that slices text at a byte offset
/// inside one of them panics.
const WIDE: &[&str] = &["\u{e9}", "\u{20ac}", "\u{1f4a9}"];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut m = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            4 => {
                let i = rng.below(m.len() + 1);
                let wide = WIDE[rng.below(WIDE.len())].as_bytes();
                m.splice(i..i, wide.iter().copied());
            }
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = SPECIAL[rng.below(SPECIAL.len())];
            }
            1 if !m.is_empty() => {
                let i = rng.below(m.len());
                m.truncate(i);
            }
            2 => {
                let i = rng.below(m.len() + 1);
                m.insert(i, SPECIAL[rng.below(SPECIAL.len())]);
            }
            _ if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = m[i].wrapping_add(1 + rng.below(255) as u8);
            }
            _ => {}
        }
    }
    m
}

#[test]
fn mutated_messages_never_panic_and_replies_stay_well_formed() {
    let h = Harness::new(&config("www", ""));
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for dir in ["valid", "invalid"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/rfc4475")
            .join(dir);
        for e in std::fs::read_dir(path).unwrap() {
            seeds.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    seeds.push(
        Register::new("alice@example.com")
            .contact("<sip:a@192.0.2.10>;+sip.instance=\"<urn:uuid:1>\";q=0.5, <sip:a@192.0.2.11>")
            .header("Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"sip:example.com\", response=\"r\", qop=auth, nc=00000001, cnonce=\"c\"")
            .text()
            .into_bytes(),
    );
    let mut rng = Rng(0x5EED_5EED_1234_5678);
    let mut replies = 0;
    for round in 0..1000 {
        for seed in &seeds {
            let m = mutate(&mut rng, seed);
            let mut out = Output::default();
            h.core.handle(h.packet(&m), &mut out);
            if !out.reply.is_empty() {
                replies += 1;
                let text = String::from_utf8_lossy(&out.reply);
                assert!(
                    text.starts_with("SIP/2.0 ") && text.ends_with("\r\n\r\n"),
                    "round {round}: {text}"
                );
            }
        }
    }
    assert!(
        replies > 1000,
        "most mutations still get an answer ({replies})"
    );
}
