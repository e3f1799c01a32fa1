//! The status page in a real browser: headless Chromium driven through ChromeDriver (the
//! W3C WebDriver protocol, spoken here over HTTP), against a server SIPp registers to. The
//! page must show the registrations and the history, update itself as devices come, filter
//! as the operator types, and show maintenance; a screenshot is kept for a look by eye.

use crate::admin::{base, http, server, sipp_registers};
use crate::browser::Browser;
use sipreg::config::Transport;

#[test]
fn the_status_page_shows_updates_and_filters_in_chromium() {
    let s = server("token = \"page-token\"");
    let api = base(s.running.admin.unwrap());
    let udp = s.running.addr(Transport::Udp).unwrap();
    let tcp = s.running.addr(Transport::Tcp).unwrap();
    sipp_registers(udp, Transport::Udp, "alice", "wonderland", 300, 200);

    let b = Browser::start();
    // The token in the fragment: the page sends it, the server never sees it in a URL.
    b.go(&format!("{api}/#token=page-token"));
    b.until("alice listed", || {
        b.texts("#registrations tbody td.alias") == ["alice@127.0.0.1"]
    });
    assert_eq!(b.texts("#registrations tbody td.transport"), ["UDP"]);
    assert_eq!(b.texts("#registrations tbody td.reach"), ["UNKNOWN"]);
    assert!(b.texts("#maintenance")[0].contains("maintenance off"));

    // Devices that come later appear without a reload, refusals in the history.
    sipp_registers(tcp, Transport::Tcp, "bob", "builder", 300, 200);
    sipp_registers(udp, Transport::Udp, "bob", "wrong", 300, 401);
    b.until("bob listed", || {
        b.texts("#registrations tbody td.alias").len() == 2
    });
    b.until("the refusal in the history", || {
        b.texts("#history tbody tr.refused td.reason") == ["Invalid credentials"]
    });
    assert_eq!(b.texts("#history tbody tr.refused td.code"), ["401"]);
    assert!(
        b.texts("#history tbody tr.added td.alias")
            .contains(&"bob@127.0.0.1".to_owned())
    );

    // The operator types a filter.
    b.type_into("#filter-alias", "bob");
    b.until("only bob", || {
        b.texts("#registrations tbody td.alias") == ["bob@127.0.0.1"]
    });
    assert_eq!(b.texts("#registrations tbody td.transport"), ["TCP"]);

    // Maintenance shows.
    let (code, _) = http(
        "PUT",
        &format!("{api}/api/maintenance"),
        Some("page-token"),
        Some(r#"{"maintenance": true}"#),
    );
    assert_eq!(code, 200);
    b.until("maintenance shown", || {
        b.texts("#maintenance")[0].contains("MAINTENANCE")
    });

    let png = b.screenshot();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert!(width >= 800, "{width}");
    let kept = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&kept, &png).unwrap();
}
