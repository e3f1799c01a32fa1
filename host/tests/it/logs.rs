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

/// A flood from one source is a few lines and one summary per window; the history and
/// /metrics still count every refusal (issue 18, finding 11: on c01b7a9 a banned svcrack
/// wrote 2,829 lines in 15 s and the history kept one of its refusals).
#[test]
fn a_flood_from_one_source_is_summarised() {
    let mut h = Harness::new(&config("www", ""));
    h.source = "198.51.100.7:5060".parse().unwrap();
    let lines = logged(|| {
        for n in 1..=50 {
            h.send(
                &Register::new("nobody@elsewhere.org")
                    .cseq(n)
                    .contact("<sip:x@198.51.100.7>")
                    .text(),
            );
        }
        h.now += 10_000;
        h.core.registrar().log_gate().flush(h.now);
    });
    let refused: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("Registration refused") && !l.contains("repeated"))
        .collect();
    assert_eq!(refused.len(), 5, "{lines:#?}");
    let summary = find(
        &lines,
        &["Registration refused repeated 45 times in the last 10 s"],
    );
    assert!(summary.contains("source=198.51.100.7"), "{summary}");
    find(
        &lines,
        &["Summarised received SIP request repeated 45 times"],
    );
    let history = h.core.registrar().history().query(&sipreg::history::Query {
        limit: 1000,
        ..Default::default()
    });
    assert_eq!(history.entries.len(), 50);
    let metrics = sipreg::admin::render_metrics(&h.core);
    assert!(
        metrics.contains("sipreg_register_refusals_total{reason=\"Domain not served\"} 50"),
        "{metrics}"
    );
}

/// A proxy in front of many phones is one source: its phones' lines are not held back.
#[test]
fn many_phones_behind_one_address_keep_their_lines() {
    let mut h = Harness::new(&config("off", ""));
    h.source = "198.51.100.7:5060".parse().unwrap();
    let lines = logged(|| {
        for phone in 0..20 {
            for n in 1..=2 {
                h.send(
                    &Register::new(&format!("phone{phone}@example.com"))
                        .cseq(n)
                        .contact(&format!("<sip:p{phone}@198.51.100.7>"))
                        .text(),
                );
            }
        }
    });
    let summaries = lines
        .iter()
        .filter(|l| l.contains("Summarised received SIP request"))
        .count();
    assert_eq!(summaries, 40);
    assert!(!lines.iter().any(|l| l.contains("repeated")), "{lines:#?}");
}
