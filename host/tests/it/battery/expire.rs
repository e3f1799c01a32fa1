//! `expire`: every binding that goes away is reported with its reason, whatever removed
//! it: the device, its time, `max_contacts` (2 in the batteries' configuration), an
//! operator.

use super::{Harness, alice_at, battery};
use sipreg::kv::KvValue;

/// The reason the policy stored for alice's last binding gone, if any.
fn last_gone(h: &Harness) -> String {
    match h.stores.kv.get("expired:alice@example.com", h.now).unwrap() {
        Some(KvValue::Str(s)) => s,
        other => format!("{other:?}"),
    }
}

fn expire(h: &mut Harness) -> Vec<(&'static str, String)> {
    let mut seen = Vec::new();
    alice_at(h, "sip:alice@192.0.2.10:5001", 60, 10);
    seen.push(("registered", last_gone(h)));
    alice_at(h, "sip:alice@192.0.2.10:5001", 0, 20);
    seen.push(("removed by the device", last_gone(h)));
    alice_at(h, "sip:alice@192.0.2.10:5002", 60, 30);
    h.now += 61_000;
    h.core.expire_due(h.now);
    seen.push(("its time ran out", last_gone(h)));
    for (i, port) in [5003, 5004, 5005].into_iter().enumerate() {
        h.now += 1_000;
        alice_at(
            h,
            &format!("sip:alice@192.0.2.10:{port}"),
            600,
            40 + 10 * i as u32,
        );
    }
    seen.push(("a third contact evicts one", last_gone(h)));
    let gone = h
        .core
        .registrar()
        .remove_aor("alice@example.com", h.now)
        .unwrap();
    seen.push((
        "an operator removes the AOR",
        format!("{} {}", gone.len(), last_gone(h)),
    ));
    seen
}

fn expected() -> Vec<(&'static str, String)> {
    [
        ("registered", "None"),
        ("removed by the device", "unregistered"),
        ("its time ran out", "expired"),
        ("a third contact evicts one", "evicted"),
        ("an operator removes the AOR", "2 administrative"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .collect()
}

battery!(expire, expected());
