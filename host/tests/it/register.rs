//! RFC 3261 section 10.3, rule by rule, in process: every rule on the memory, the
//! embedded and the Redis store (each test below runs once per store, in the modules
//! `memory`, `embedded` and `redis` at the end).

use crate::support::{Harness, Register, Store, T0, config};

fn open(store: Store) -> Harness {
    Harness::on(store, &config("off", ""))
}

const ALICE: &str = "alice@example.com";

fn registers_and_lists_with_expires_date_tag_and_via(store: Store) {
    let h = open(store);
    let r = h.send(
        &Register::new(ALICE)
            .contact("<sip:alice@192.0.2.10:5060>")
            .text(),
    );
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(
        r.contact_expires(),
        vec![("sip:alice@192.0.2.10:5060".into(), 3600)]
    );
    assert!(httpdate::parse_http_date(r.header("Date").unwrap()).is_ok());
    assert!(r.header("To").unwrap().contains(";tag="));
    assert_eq!(
        r.header("Via").unwrap(),
        "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-1;received=192.0.2.10;rport=5060"
    );
}

fn request_uri_domain_must_be_served(store: Store) {
    let h = open(store);
    let mut reg = Register::new(ALICE).contact("<sip:alice@192.0.2.10>");
    reg.ruri = "sip:elsewhere.org".into();
    let r = h.send(&reg.text());
    assert_eq!((r.code, r.reason.as_str()), (403, "Domain not served"));
    // the host is compared, not the port (SIPp sends sip:127.0.0.1:5071)
    reg.ruri = "sip:EXAMPLE.com:5071".into();
    assert_eq!(h.send(&reg.text()).code, 200);
}

fn to_must_name_an_aor_of_the_domain(store: Store) {
    let h = open(store);
    let r = h.send(
        &Register::new("alice@elsewhere.org")
            .contact("<sip:a@192.0.2.10>")
            .text()
            .replace("REGISTER sip:elsewhere.org", "REGISTER sip:example.com"),
    );
    assert_eq!(r.code, 404);
}

fn unknown_required_extension_is_420_with_unsupported(store: Store) {
    let h = open(store);
    let r = h.send(
        &Register::new(ALICE)
            .contact("<sip:a@192.0.2.10>")
            .header("Require: foo, bar")
            .text(),
    );
    assert_eq!(r.code, 420);
    assert_eq!(r.header("Unsupported"), Some("foo, bar"));
}

fn unknown_alias_policies(store: Store) {
    for (policy, code) in [("forbidden", 403), ("not-found", 404)] {
        let h = Harness::on(
            store,
            &config("off", &format!("unknown_alias = \"{policy}\"")),
        );
        let r = h.send(
            &Register::new("mallory@example.com")
                .contact("<sip:m@192.0.2.10>")
                .text(),
        );
        assert_eq!(r.code, code, "{policy}");
    }
}

fn transport_not_enabled_for_alias_is_403(store: Store) {
    let mut h = open(store);
    h.transport = sipreg::config::Transport::Tcp;
    let r = h.send(
        &Register::new("bob@example.com")
            .contact("<sip:bob@192.0.2.10;transport=tcp>")
            .text(),
    );
    assert_eq!(r.code, 403);
    assert!(r.reason.contains("TCP not enabled"), "{}", r.reason);
    h.transport = sipreg::config::Transport::Udp;
    assert_eq!(
        h.send(
            &Register::new("bob@example.com")
                .contact("<sip:bob@192.0.2.10>")
                .text()
        )
        .code,
        200
    );
}

fn wildcard_rules(store: Store) {
    let h = open(store);
    h.send(
        &Register::new(ALICE)
            .contact("<sip:a@192.0.2.10>")
            .contact("<sip:a@192.0.2.11>")
            .text(),
    );
    let bad = h.send(
        &Register::new(ALICE)
            .cseq(2)
            .contact("*")
            .expires("60")
            .text(),
    );
    assert_eq!(
        (bad.code, bad.reason.as_str()),
        (400, "Contact * requires Expires: 0")
    );
    let mixed = h.send(
        &Register::new(ALICE)
            .cseq(3)
            .contact("*, <sip:a@192.0.2.12>")
            .expires("0")
            .text(),
    );
    assert_eq!(
        (mixed.code, mixed.reason.as_str()),
        (400, "Contact * must stand alone")
    );
    let ok = h.send(
        &Register::new(ALICE)
            .cseq(4)
            .contact("*")
            .expires("0")
            .text(),
    );
    assert_eq!(ok.code, 200);
    assert!(ok.all("Contact").is_empty());
    assert!(
        h.send(&Register::new(ALICE).cseq(5).text())
            .all("Contact")
            .is_empty()
    );
}

fn expiry_from_param_then_header_then_default_with_min_and_max(store: Store) {
    let h = open(store);
    let r = h.send(
        &Register::new(ALICE)
            .contact("<sip:a@192.0.2.10>;expires=120")
            .contact("<sip:a@192.0.2.11>")
            .expires("300")
            .text(),
    );
    let mut got = r.contact_expires();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("sip:a@192.0.2.10".into(), 120),
            ("sip:a@192.0.2.11".into(), 300)
        ]
    );
    let long = h.send(
        &Register::new(ALICE)
            .cseq(2)
            .contact("<sip:a@192.0.2.10>")
            .expires("999999")
            .text(),
    );
    assert!(
        long.contact_expires()
            .contains(&("sip:a@192.0.2.10".into(), 7200))
    );
    let brief = h.send(
        &Register::new(ALICE)
            .cseq(3)
            .contact("<sip:a@192.0.2.10>;expires=30")
            .text(),
    );
    assert_eq!(brief.code, 423);
    assert_eq!(brief.header("Min-Expires"), Some("60"));
    // 423 changed nothing
    let q = h.send(&Register::new(ALICE).cseq(4).text());
    assert!(
        q.contact_expires()
            .contains(&("sip:a@192.0.2.10".into(), 7200))
    );
}

fn cseq_ordering_and_call_id_replacement(store: Store) {
    let h = open(store);
    let first = Register::new(ALICE).cseq(10).contact("<sip:a@192.0.2.10>");
    assert_eq!(h.send(&first.text()).code, 200);
    // same Call-ID, lower or equal CSeq with another branch: refused, nothing changes
    for n in [9, 10] {
        let mut r = Register::new(ALICE)
            .cseq(n)
            .contact("<sip:a@192.0.2.10>")
            .expires("0");
        r.branch = format!("z9hG4bK-other{n}");
        let reply = h.send(&r.text());
        assert_eq!(
            (reply.code, reply.reason.as_str()),
            (400, "Sequence number out of order"),
            "cseq {n}"
        );
    }
    assert_eq!(
        h.send(&Register::new(ALICE).cseq(11).text())
            .all("Contact")
            .len(),
        1
    );
    // a retransmission (same CSeq, same branch) is answered 200 and changes nothing
    assert_eq!(h.send(&first.text()).code, 200);
    // a new Call-ID replaces, whatever its CSeq
    let other = h.send(
        &Register::new(ALICE)
            .call_id("new")
            .cseq(1)
            .contact("<sip:a@192.0.2.10>")
            .expires("0")
            .text(),
    );
    assert_eq!(other.code, 200);
    assert!(other.all("Contact").is_empty());
}

fn an_update_is_all_or_nothing(store: Store) {
    let h = open(store);
    h.send(
        &Register::new(ALICE)
            .cseq(5)
            .contact("<sip:a@192.0.2.10>")
            .text(),
    );
    // one new contact and one that fails the CSeq check: neither is applied
    let mut r = Register::new(ALICE)
        .cseq(5)
        .contact("<sip:a@192.0.2.99>")
        .contact("<sip:a@192.0.2.10>;expires=0");
    r.branch = "z9hG4bK-x".into();
    assert_eq!(h.send(&r.text()).code, 400);
    let now = h.send(&Register::new(ALICE).cseq(6).text());
    assert_eq!(now.contact_expires().len(), 1);
    assert_eq!(now.contact_expires()[0].0, "sip:a@192.0.2.10");
}

fn q_values_and_instance_parameters_are_kept_byte_for_byte(store: Store) {
    let h = open(store);
    let c = r#"<sip:a@192.0.2.10;transport=udp>;+sip.instance="<urn:uuid:f0b7095d-5ee0-548a-80a8-c522aafdf94b>";reg-id=1;q=0.7"#;
    let r = h.send(&Register::new(ALICE).contact(c).text());
    let listed = r.header("Contact").unwrap();
    assert!(
        listed.starts_with(r#"<sip:a@192.0.2.10;transport=udp>;+sip.instance="<urn:uuid:f0b7095d-5ee0-548a-80a8-c522aafdf94b>";reg-id=1;expires=3600"#),
        "{listed}"
    );
    assert!(listed.ends_with(";q=0.7"), "{listed}");
}

fn query_lists_seconds_left(store: Store) {
    let mut h = open(store);
    h.send(
        &Register::new(ALICE)
            .contact("<sip:a@192.0.2.10>")
            .expires("600")
            .text(),
    );
    h.now = T0 + 100_000;
    let q = h.send(&Register::new(ALICE).cseq(2).text());
    assert_eq!(q.code, 200);
    assert_eq!(q.contact_expires(), vec![("sip:a@192.0.2.10".into(), 500)]);
}

fn max_contacts_evicts_the_least_recently_refreshed(store: Store) {
    let mut h = open(store); // max_contacts = 3
    for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
        h.now = T0 + i as u64 * 1000;
        h.send(
            &Register::new(ALICE)
                .call_id(&format!("c{i}"))
                .contact(&format!("<sip:a@{ip}>"))
                .text(),
        );
    }
    h.now = T0 + 5000;
    h.send(
        &Register::new(ALICE)
            .call_id("c0")
            .cseq(2)
            .contact("<sip:a@192.0.2.1>")
            .text(),
    );
    h.now = T0 + 6000;
    let r = h.send(
        &Register::new(ALICE)
            .call_id("c9")
            .contact("<sip:a@192.0.2.9>")
            .text(),
    );
    let mut uris: Vec<_> = r.contact_expires().into_iter().map(|(u, _)| u).collect();
    uris.sort();
    assert_eq!(
        uris,
        vec!["sip:a@192.0.2.1", "sip:a@192.0.2.3", "sip:a@192.0.2.9"]
    );
    let too_many = Register::new(ALICE)
        .call_id("c10")
        .contact("<sip:a@10.0.0.1>, <sip:a@10.0.0.2>, <sip:a@10.0.0.3>, <sip:a@10.0.0.4>");
    assert_eq!(h.send(&too_many.text()).code, 403);
}

fn bindings_expire_on_time(store: Store) {
    let mut h = open(store);
    h.send(
        &Register::new(ALICE)
            .contact("<sip:a@192.0.2.10>")
            .expires("60")
            .text(),
    );
    assert_eq!(h.core.expire_due(T0 + 59_999), 0);
    assert_eq!(h.core.expire_due(T0 + 60_000), 1);
    assert!(h.core.registrar().location().count().unwrap() == 0);
    h.now = T0 + 61_000;
    assert!(
        h.send(&Register::new(ALICE).cseq(2).text())
            .all("Contact")
            .is_empty()
    );
}

fn options_and_other_methods(store: Store) {
    let h = open(store);
    let req = |method: &str| {
        format!(
            "{method} sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKo\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: o1\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
    };
    let o = h.send(&req("OPTIONS"));
    assert_eq!(o.code, 200);
    assert_eq!(o.header("Allow"), Some("REGISTER, OPTIONS"));
    // with the proxy on (the default) other methods are routed: example.com is no alias
    assert_eq!(h.send(&req("INVITE")).code, 404);
    assert_eq!(h.send(&req("FROBNICATE")).code, 404);
    // a registrar only
    let h = Harness::on(
        store,
        &format!("{}\n[proxy]\nmode = \"off\"\n", config("off", "")),
    );
    let i = h.send(&req("INVITE"));
    assert_eq!(i.code, 405);
    assert_eq!(i.header("Allow"), Some("REGISTER, OPTIONS"));
    assert_eq!(h.send(&req("FROBNICATE")).code, 501);
    assert!(
        h.send_raw(req("ACK").as_bytes()).is_none(),
        "ACK is never answered"
    );
}

fn malformed_requests_get_400_with_a_reason_or_are_dropped(store: Store) {
    let h = open(store);
    let good = Register::new(ALICE).contact("<sip:a@192.0.2.10>").text();
    let cases = [
        (
            good.replace("CSeq: 1 REGISTER", "CSeq: x REGISTER"),
            "Malformed CSeq",
        ),
        (
            good.replace("Call-ID: cid-alice@example.com\r\n", ""),
            "Missing Call-ID header",
        ),
        (
            good.replace("<sip:a@192.0.2.10>", "<sip:a@192.0.2.10>;q=7"),
            "Malformed Contact q parameter",
        ),
        (
            good.replace(
                "To: <sip:alice@example.com>\r\n",
                "To: <sip:alice@example.com>\r\nTo: <sip:x@example.com>\r\n",
            ),
            "More than one To header",
        ),
    ];
    for (text, reason) in cases {
        let r = h.send(&text);
        assert_eq!((r.code, r.reason.as_str()), (400, reason));
    }
    assert!(h.send_raw(b"\x00\x01garbage").is_none());
    assert!(
        h.send_raw(good.replace("Via: ", "Xia: ").as_bytes())
            .is_none()
    );
    assert_eq!(
        h.core
            .counters
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

fn escaped_user_part_names_the_same_aor(store: Store) {
    let h = open(store);
    let escaped = Register::new("%61lice@example.com").contact("<sip:a@192.0.2.10>");
    assert_eq!(
        h.send(&escaped.text()).code,
        200,
        "%61lice is alice, a listed alias"
    );
    let q = h.send(&Register::new(ALICE).call_id("other").text());
    assert_eq!(q.contact_expires(), vec![("sip:a@192.0.2.10".into(), 3600)]);
}

/// RFC 5626: a device's flows are keyed by instance and reg-id, and the 200 tells an
/// outbound device that the registrar does outbound and how often to keep the flow alive.
fn outbound_registrations_replace_and_get_require_and_flow_timer(store: Store) {
    let h = open(store);
    let contact = |host: &str| {
        format!(
            "<sip:alice@{host}:5060>;+sip.instance=\"<urn:uuid:00000000-0000-0000-0000-000000000001>\";reg-id=1"
        )
    };
    let first = Register::new(ALICE)
        .contact(&contact("192.0.2.10"))
        .header("Supported: path, outbound");
    let r = h.send(&first.text());
    assert_eq!(r.code, 200);
    assert_eq!(r.header("Require"), Some("outbound"));
    assert_eq!(r.header("Flow-Timer"), Some("120"));
    // the device comes back from another address (a new NAT binding): replaced
    let moved = Register::new(ALICE)
        .call_id("after-reboot")
        .contact(&contact("192.0.2.44"))
        .header("Supported: outbound");
    let r = h.send(&moved.text());
    let contacts = r.all("Contact");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    assert!(contacts[0].starts_with("<sip:alice@192.0.2.44:5060>"));
    // without Supported: outbound nothing is required of the device
    let plain = Register::new(ALICE)
        .cseq(2)
        .call_id("after-reboot")
        .contact(&contact("192.0.2.44"));
    assert_eq!(h.send(&plain.text()).header("Require"), None);
}

fn outbound_through_a_proxy_needs_its_ob_path(store: Store) {
    let h = open(store);
    let flow = "<sip:alice@192.0.2.10>;+sip.instance=\"<urn:uuid:1>\";reg-id=1";
    let via_edge = Register::new(ALICE)
        .contact(flow)
        .header("Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKedge");
    let r = h.send(&via_edge.text());
    assert_eq!(
        (r.code, r.reason.as_str()),
        (439, "First Hop Lacks Outbound Support")
    );
    let with_ob = via_edge
        .cseq(2)
        .header("Path: <sip:192.0.2.50;lr;ob>")
        .header("Supported: outbound, path");
    let r = h.send(&with_ob.text());
    assert_eq!(r.code, 200);
    assert_eq!(r.header("Path"), Some("<sip:192.0.2.50;lr;ob>"));
}

/// Maintenance: a new registration or a refresh gets 503 with Retry-After before any
/// challenge; a de-registration, `Contact: *` and a query are still served; off again, 200.
fn maintenance_refuses_new_registrations_only(store: Store) {
    let h = Harness::on(store, &config("www", ""));
    let registrar = h.core.registrar();
    let open = Harness::on(store, &config("off", ""));
    open.send(
        &Register::new(ALICE)
            .contact("<sip:alice@192.0.2.10>")
            .text(),
    );
    open.send(
        &Register::new("bob@example.com")
            .contact("<sip:bob@192.0.2.11>")
            .text(),
    );
    registrar.set_maintenance(true);
    assert!(registrar.in_maintenance());
    let refused = h.send(
        &Register::new(ALICE)
            .contact("<sip:alice@192.0.2.10>")
            .text(),
    );
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (503, "Maintenance mode")
    );
    assert_eq!(refused.header("Retry-After"), Some("60"));
    assert!(
        refused.header("WWW-Authenticate").is_none(),
        "no challenge first"
    );

    let o = open.core.registrar();
    o.set_maintenance(true);
    let refresh = open.send(
        &Register::new(ALICE)
            .contact("<sip:alice@192.0.2.10>")
            .cseq(2)
            .text(),
    );
    assert_eq!(refresh.code, 503, "a refresh is a registration too");
    let gone = open.send(
        &Register::new(ALICE)
            .contact("<sip:alice@192.0.2.10>;expires=0")
            .cseq(3)
            .text(),
    );
    assert_eq!(gone.code, 200, "{}", gone.text);
    assert!(gone.contact_expires().is_empty());
    let query = open.send(&Register::new("bob@example.com").cseq(2).text());
    assert_eq!(query.code, 200);
    assert_eq!(query.contact_expires().len(), 1);
    let all = open.send(
        &Register::new("bob@example.com")
            .contact("*")
            .expires("0")
            .cseq(3)
            .text(),
    );
    assert_eq!(all.code, 200, "{}", all.text);
    o.set_maintenance(false);
    let back = open.send(
        &Register::new(ALICE)
            .contact("<sip:alice@192.0.2.10>")
            .cseq(4)
            .text(),
    );
    assert_eq!(back.code, 200);
}

fn syntax_errors_are_400_before_any_challenge(store: Store) {
    let h = Harness::on(store, &config("www", ""));
    let nul_call_id = Register::new(ALICE)
        .call_id("cid\u{0}x")
        .contact("<sip:alice@192.0.2.10>");
    let r = h.send(&nul_call_id.text());
    assert_eq!(
        (r.code, r.reason.as_str()),
        (400, "Control character in header Call-ID")
    );
    let unterminated = Register::new(ALICE).contact("<sip:alice@192.0.2.10");
    let r = h.send(&unterminated.text());
    assert_eq!(r.code, 400, "{}", r.text);
    let control = Register::new(ALICE)
        .contact("<sip:alice@192.0.2.10>")
        .header("Subject: a\u{1}b");
    let r = h.send(&control.text());
    assert_eq!(
        (r.code, r.reason.as_str()),
        (400, "Control character in header Subject")
    );
    // a tab is allowed, and the same REGISTER without the damage is challenged
    let fine = Register::new(ALICE)
        .contact("<sip:alice@192.0.2.10>")
        .header("Subject: a\tb");
    assert_eq!(h.send(&fine.text()).code, 401);
}

/// One test per store for each rule above.
macro_rules! on_every_store {
    ($($rule:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $rule() { super::$rule(super::Store::Memory) })*
        }
        mod embedded {
            $(#[test] fn $rule() { super::$rule(super::Store::Embedded) })*
        }
        mod redis {
            $(#[test] fn $rule() { super::$rule(super::Store::Redis) })*
        }
    };
}

on_every_store!(
    registers_and_lists_with_expires_date_tag_and_via,
    request_uri_domain_must_be_served,
    to_must_name_an_aor_of_the_domain,
    unknown_required_extension_is_420_with_unsupported,
    unknown_alias_policies,
    transport_not_enabled_for_alias_is_403,
    wildcard_rules,
    expiry_from_param_then_header_then_default_with_min_and_max,
    cseq_ordering_and_call_id_replacement,
    an_update_is_all_or_nothing,
    q_values_and_instance_parameters_are_kept_byte_for_byte,
    query_lists_seconds_left,
    max_contacts_evicts_the_least_recently_refreshed,
    bindings_expire_on_time,
    options_and_other_methods,
    malformed_requests_get_400_with_a_reason_or_are_dropped,
    escaped_user_part_names_the_same_aor,
    outbound_registrations_replace_and_get_require_and_flow_timer,
    outbound_through_a_proxy_needs_its_ob_path,
    maintenance_refuses_new_registrations_only,
    syntax_errors_are_400_before_any_challenge,
);
