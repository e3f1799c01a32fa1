//! The log lines operators read (in the spirit of the Pexip seed): admin events for added
//! and deleted registrations, support events for refreshes, refusals with their reasons and
//! summaries of every request and response.

use crate::support::{Harness, Register, T0, authorization, config, find, logged};

#[test]
fn added_refreshed_deleted_with_reason() {
    let mut h = Harness::new(&config("off", ""));
    let lines = logged(|| {
        h.send(
            &Register::new("alice@example.com")
                .contact("<sip:alice@10.1.1.1>")
                .expires("60")
                .text(),
        );
        h.send(
            &Register::new("alice@example.com")
                .cseq(2)
                .contact("<sip:alice@10.1.1.1>")
                .expires("60")
                .text(),
        );
        h.now = T0 + 120_000;
        h.core.expire_due(h.now);
    });
    let added = find(
        &lines,
        &[
            "sipreg::admin",
            "Registration added",
            "alias=\"alice@example.com\"",
        ],
    );
    assert!(
        added.contains("protocol=\"UDP\"") && added.contains("natted=\"True\""),
        "{added}"
    );
    let id = added
        .split("registration_id=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    find(&lines, &["sipreg::support", "Registration refreshed", id]);
    find(
        &lines,
        &[
            "sipreg::admin",
            "Registration deleted",
            id,
            "reason=\"Registration expired\"",
        ],
    );
    find(
        &lines,
        &[
            "Summarised received SIP request",
            "method=REGISTER",
            "call_id=\"cid-alice@example.com\"",
            "contacts=<sip:alice@10.1.1.1>",
        ],
    );
    find(
        &lines,
        &["Summarised sending SIP response", "status_code=200"],
    );
}

#[test]
fn refusals_say_why() {
    let h = Harness::new(&config("www", ""));
    let lines = logged(|| {
        h.send(
            &Register::new("mallory@example.com")
                .contact("<sip:m@192.0.2.10>")
                .text(),
        );
        let r = h.send(
            &Register::new("alice@example.com")
                .contact("<sip:a@192.0.2.10>")
                .text(),
        );
        let ch = r.all("WWW-Authenticate")[0].to_owned();
        let wrong = authorization(&ch, "alice", "nope", "sip:example.com", 1);
        h.send(
            &Register::new("alice@example.com")
                .cseq(2)
                .contact("<sip:a@192.0.2.10>")
                .header(&format!("Authorization: {wrong}"))
                .text(),
        );
        let other = authorization(&ch, "slice", "x", "sip:example.com", 2);
        h.send(
            &Register::new("alice@example.com")
                .cseq(3)
                .contact("<sip:a@192.0.2.10>")
                .header(&format!("Authorization: {other}"))
                .text(),
        );
    });
    find(
        &lines,
        &[
            "Registration refused",
            "alias=\"mallory@example.com\"",
            "reason=\"Alias not found\"",
        ],
    );
    find(
        &lines,
        &[
            "reason=\"Invalid credentials\"",
            "expected_username=\"alice\"",
            "supplied_username=\"alice\"",
        ],
    );
    find(
        &lines,
        &[
            "reason=\"Invalid credentials\"",
            "expected_username=\"alice\"",
            "supplied_username=\"slice\"",
        ],
    );
    find(
        &lines,
        &["Summarised sending SIP response", "status_code=401"],
    );
}

#[test]
fn stale_nonce_is_logged_as_such() {
    let mut h = Harness::new(&config("www", ""));
    let r = h.send(
        &Register::new("alice@example.com")
            .contact("<sip:a@192.0.2.10>")
            .text(),
    );
    let ch = r.all("WWW-Authenticate")[0].to_owned();
    h.now = T0 + 400_000;
    let lines = logged(|| {
        let auth = authorization(&ch, "alice", "wonderland", "sip:example.com", 1);
        h.send(
            &Register::new("alice@example.com")
                .cseq(2)
                .contact("<sip:a@192.0.2.10>")
                .header(&format!("Authorization: {auth}"))
                .text(),
        );
    });
    find(
        &lines,
        &[
            "Authentication failed",
            "alias=\"alice@example.com\"",
            "reason=\"Stale nonce\"",
        ],
    );
}

#[test]
fn eviction_is_logged() {
    let mut h = Harness::new(&config("off", "")); // max_contacts = 3
    let lines = logged(|| {
        for i in 0..4u64 {
            h.now = T0 + i * 1000;
            h.send(
                &Register::new("alice@example.com")
                    .call_id(&format!("c{i}"))
                    .contact(&format!("<sip:a@192.0.2.{i}>"))
                    .text(),
            );
        }
    });
    find(
        &lines,
        &[
            "Registration deleted",
            "reason=\"Evicted: max_contacts reached\"",
        ],
    );
}
