//! Calls through sipreg, end to end with SIPp on both sides: a SIPp "phone" registers as
//! bob and waits for a call; a SIPp caller calls bob through sipreg. INVITE, 180, 200,
//! ACK and BYE must complete, over UDP and TCP, with either side hanging up.
//!
//! SIPp maps what it receives to its calls by Call-ID, and a scenario that starts by
//! sending (bob's REGISTER) takes no new incoming call; so both SIPp runs are given the
//! same Call-ID (`-cid_str`), and bob's INVITE arrives in bob's registration "call".

use crate::sippkit::{Background, check, expect, scenario, sipp};
use crate::support::{Served, app, conf, now_ms, serve};
use sipreg::config::{self, Transport};

/// sipreg on loopback: open registration for the aliases alice and bob of 127.0.0.1,
/// the proxy on with Record-Route.
fn server() -> Served {
    let toml = conf(
        "configs/loopback.toml",
        r#"
[[aliases]]
alias = "alice@127.0.0.1"

[[aliases]]
alias = "bob@127.0.0.1"
"#,
    );
    let cfg = config::parse(&toml, "calls.toml").unwrap();
    serve(&cfg, app(&cfg, Vec::new()).core)
}

/// Who ends the call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hangup {
    Caller,
    Callee,
}

const SDP: &str = "v=0\n      o=- 1 1 IN IP4 [local_ip]\n      s=-\n      c=IN IP4 [local_ip]\n      t=0 0\n      m=audio 6000 RTP/AVP 0\n";

/// A response to the last request received, with our To tag, our Contact, the
/// Record-Route echoed (RFC 3261 section 12.1.1) and an optional SDP body.
fn answer(status: &str, contact: &str, body: bool) -> String {
    // A 200 is retransmitted until the ACK comes (RFC 3261 section 13.3.1.4).
    let (ctype, content, retrans) = if body {
        (
            "      Content-Type: application/sdp\n",
            SDP,
            " retrans=\"500\"",
        )
    } else {
        ("", "", "")
    };
    format!(
        r#"  <send{retrans}>
    <![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]callee
      [last_Call-ID:]
      [last_CSeq:]
      [last_Record-Route:]
      Contact: {contact}
{ctype}      Content-Length: [len]

{content}
    ]]>
  </send>
"#
    )
}

/// An in-dialog request along the route set SIPp learnt (`rrs`).
fn in_dialog(method: &str, cseq: u32, from: &str, to: &str) -> String {
    format!(
        r#"  <send retrans="500">
    <![CDATA[
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      [routes]
      From: {from}
      To: {to}
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Content-Length: 0

    ]]>
  </send>
"#
    )
}

/// The 200 to the last request received (BYE, MESSAGE).
const OK: &str = r#"  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"#;

/// bob's REGISTER with `contact`, and the 200 to it.
fn register_bob(contact: &str) -> String {
    format!(
        r#"  <send retrans="500">
    <![CDATA[
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:bob@[remote_ip]>;tag=reg[pid]
      To: <sip:bob@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: {contact}
      Expires: 300
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" timeout="5000"/>
"#
    )
}

/// bob: registers with `contact` (from its own socket), answers one INVITE, and hangs up
/// or waits for the caller to.
fn callee(contact: &str, hangup: Hangup) -> String {
    let mut s = register_bob(contact);
    s += &format!(
        r#"  <recv request="INVITE" timeout="15000" rrs="true">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="caller"/>
{rr}    </action>
  </recv>
"#,
        rr = check("Record-Route", ";lr", false)
    );
    s += &answer("180 Ringing", contact, false);
    s += &answer("200 OK", contact, true);
    s += "  <recv request=\"ACK\" timeout=\"5000\"/>\n";
    match hangup {
        Hangup::Caller => {
            s += "  <recv request=\"BYE\" timeout=\"5000\"/>\n";
            s += OK;
        }
        Hangup::Callee => {
            s += "  <pause milliseconds=\"100\"/>\n";
            s += &in_dialog(
                "BYE",
                2,
                "<sip:bob@[remote_ip]>;tag=[pid]callee",
                "[$caller]",
            );
            s += &expect(200, "");
        }
    }
    scenario(&s)
}

/// alice: calls `who` through sipreg.
fn caller(who: &str, hangup: Hangup) -> String {
    let contact = "<sip:alice@[local_ip]:[local_port];transport=[transport]>";
    let mut s = format!(
        r#"  <send retrans="500">
    <![CDATA[
      INVITE sip:{who}@[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:alice@[remote_ip]>;tag=[pid]caller
      To: <sip:{who}@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: {contact}
      Content-Type: application/sdp
      Content-Length: [len]

      {SDP}
    ]]>
  </send>
  <recv response="180" optional="true" timeout="5000"/>
  <recv response="200" rrs="true" timeout="5000">
    <action>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="callee"/>
    </action>
  </recv>
"#
    );
    let from = "<sip:alice@[remote_ip]>;tag=[pid]caller";
    s += &in_dialog("ACK", 1, from, "[$callee]").replace(" retrans=\"500\"", "");
    match hangup {
        Hangup::Caller => {
            s += "  <pause milliseconds=\"200\"/>\n";
            s += &in_dialog("BYE", 2, from, "[$callee]");
            s += &expect(200, "");
        }
        Hangup::Callee => {
            s += "  <recv request=\"BYE\" timeout=\"5000\"/>\n";
            s += OK;
        }
    }
    scenario(&s)
}

/// One call from alice to bob, bob registered with `contact`.
fn call(s: &Served, t: Transport, contact: &str, hangup: Hangup, name: &str) {
    let addr = s.running.addr(t).unwrap();
    let cid = format!("{name}-{t}-%u");
    let bob = Background::start(addr, t, &callee(contact, hangup), &["-cid_str", &cid]);
    s.wait_registered("bob@127.0.0.1");
    let alice = sipp(addr, t, &caller("bob", hangup), &["-cid_str", &cid]);
    let bob = bob.finish();
    alice.unwrap_or_else(|e| panic!("{name} {t}: caller: {e}"));
    bob.unwrap_or_else(|e| panic!("{name} {t}: callee: {e}"));
}

const OWN_CONTACT: &str = "<sip:bob@[local_ip]:[local_port];transport=[transport]>";

#[test]
fn calls_complete_over_udp_and_tcp_whoever_hangs_up() {
    for t in [Transport::Udp, Transport::Tcp] {
        for hangup in [Hangup::Caller, Hangup::Callee] {
            let s = server();
            let name = if hangup == Hangup::Caller {
                "caller-bye"
            } else {
                "callee-bye"
            };
            call(&s, t, OWN_CONTACT, hangup, name);
        }
    }
}

#[test]
fn unregistered_alias_is_480_and_unknown_alias_404() {
    let s = server();
    for t in [Transport::Udp, Transport::Tcp] {
        for (who, code) in [("alice", 480), ("carol", 404)] {
            let ack = in_dialog("ACK", 1, "<sip:alice@[remote_ip]>;tag=[pid]caller", "[$to]")
                .replace(" retrans=\"500\"", "")
                .replace("[next_url]", &format!("sip:{who}@[remote_ip]"))
                .replace("      [routes]\n", "");
            let body = caller(who, Hangup::Caller);
            let invite_end = body.find("  <recv response=\"180\"").unwrap();
            let start =
                body.find("<scenario name=\"t\">\n").unwrap() + "<scenario name=\"t\">\n".len();
            let body = format!(
                "{}  <recv response=\"{code}\" timeout=\"5000\">\n    <action>\n      <ereg regexp=\".*\" search_in=\"hdr\" header=\"To:\" assign_to=\"to\"/>\n    </action>\n  </recv>\n{ack}",
                &body[start..invite_end]
            );
            sipp(s.running.addr(t).unwrap(), t, &scenario(&body), &[])
                .unwrap_or_else(|e| panic!("{who} {t}: {e}"));
        }
    }
}

/// bob writes a private address nobody can reach (as a phone behind NAT does): the
/// INVITE must go to where his REGISTER came from (UDP) or down the very connection it
/// came on (TCP), and so must the requests within the call, whoever hangs up.
#[test]
fn natted_phone_is_reached_at_its_source_and_on_its_connection() {
    let private = "<sip:bob@10.9.9.9:5060;transport=[transport]>";
    for t in [Transport::Udp, Transport::Tcp] {
        for hangup in [Hangup::Caller, Hangup::Callee] {
            let s = server();
            let name = if hangup == Hangup::Caller {
                "nat-caller-bye"
            } else {
                "nat-callee-bye"
            };
            call(&s, t, private, hangup, name);
            let b = s
                .running
                .core
                .registrar()
                .location()
                .lookup("bob@127.0.0.1", now_ms())
                .unwrap();
            assert!(b[0].natted, "{t}: the binding is marked natted");
        }
    }
}

/// A MESSAGE to bob is delivered (and its 200 comes back), over UDP and TCP.
#[test]
fn message_is_delivered() {
    for t in [Transport::Udp, Transport::Tcp] {
        let s = server();
        let addr = s.running.addr(t).unwrap();
        let cid = format!("message-{t}-%u");
        let mut bob = register_bob(OWN_CONTACT);
        bob += &format!(
            "  <recv request=\"MESSAGE\" timeout=\"15000\">\n    <action>\n{}    </action>\n  </recv>\n",
            check("Content-Type", "text/plain", false)
        );
        bob += OK;
        let bob = Background::start(addr, t, &scenario(&bob), &["-cid_str", &cid]);
        s.wait_registered("bob@127.0.0.1");
        let alice = r#"  <send retrans="500">
    <![CDATA[
      MESSAGE sip:bob@[remote_ip] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
      Max-Forwards: 70
      From: <sip:alice@[remote_ip]>;tag=[pid]m
      To: <sip:bob@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 MESSAGE
      Content-Type: text/plain
      Content-Length: [len]

      Watson, come here.
    ]]>
  </send>
"#
        .to_owned()
            + &expect(200, "");
        let alice = sipp(addr, t, &scenario(&alice), &["-cid_str", &cid]);
        let bob = bob.finish();
        alice.unwrap_or_else(|e| panic!("{t}: sender: {e}"));
        bob.unwrap_or_else(|e| panic!("{t}: bob: {e}"));
    }
}
