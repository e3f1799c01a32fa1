//! The branch of the Via this server adds when it forwards a request (RFC 3261 section
//! 16.11, stateless proxy), and loop detection (section 16.3 item 4).
//!
//! `z9hG4bK` `.sr` then two 16-digit hex hashes joined by `.`:
//! - the first names the transaction: a hash of the received top Via's branch when it
//!   carries the magic cookie (else of the top Via, the tags, Call-ID, CSeq number and
//!   Request-URI). A retransmission, the CANCEL of an INVITE and the ACK of a non-2xx
//!   response get the same branch as the request they belong to, as downstream servers
//!   need to match them;
//! - the second is the loop check: a hash of everything that decides where the request
//!   goes (Request-URI, Route, Call-ID, From tag, CSeq number). A request that comes back
//!   with our Via and the same hash has looped (482); one whose routing changed is a
//!   spiral. The To tag is left out: some clients put one in a CANCEL, whose branch must
//!   still be its INVITE's.

use crate::sip::name_addr::NameAddr;
use crate::sip::request::Checked;
use crate::sip::{HeaderName, Message};
use std::hash::BuildHasher;

/// What our branches start with.
pub const PREFIX: &str = "z9hG4bK.sr";

fn hash(parts: &[&str]) -> u64 {
    foldhash::fast::FixedState::with_seed(0x5195_0e11).hash_one(parts)
}

fn tag(value: Option<&str>) -> &str {
    value
        .and_then(|v| NameAddr::parse(v).ok())
        .and_then(|a| a.tag())
        .unwrap_or("")
}

/// The CSeq number, without the method (a CANCEL shares it with its INVITE).
fn cseq_number(msg: &Message) -> &str {
    let cseq = msg.header(HeaderName::CSeq).unwrap_or("");
    cseq.split_ascii_whitespace().next().unwrap_or("")
}

/// The loop-check hash of a request as it arrived.
pub fn loop_hash(msg: &Message) -> u64 {
    let routes: Vec<&str> = msg.headers_named(HeaderName::Route).collect();
    hash(&[
        msg.request_uri().unwrap_or(""),
        &routes.join(","),
        msg.header(HeaderName::CallId).unwrap_or(""),
        tag(msg.header(HeaderName::From)),
        cseq_number(msg),
    ])
}

/// The branch for forwarding `msg`, whose loop-check hash is `loop_hash`.
pub fn branch(msg: &Message, checked: &Checked<'_>, loop_hash: u64) -> String {
    let via = &checked.top_via;
    let transaction = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => hash(&[b, via.host]),
        _ => hash(&[
            via.raw,
            tag(msg.header(HeaderName::To)),
            tag(msg.header(HeaderName::From)),
            msg.header(HeaderName::CallId).unwrap_or(""),
            cseq_number(msg),
            msg.request_uri().unwrap_or(""),
        ]),
    };
    format!("{PREFIX}{transaction:016x}.{loop_hash:016x}")
}

/// The loop-check part of one of our branches.
pub fn loop_part(branch: &str) -> Option<u64> {
    let rest = branch.strip_prefix(PREFIX)?;
    let (_, l) = rest.split_once('.')?;
    u64::from_str_radix(l, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::request::{check, top_via};

    fn msg(text: &str) -> Message {
        Message::parse(text.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    const INVITE: &str = "INVITE sip:bob@example.com SIP/2.0\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc\n\
        Max-Forwards: 70\n\
        From: <sip:alice@example.com>;tag=1\n\
        To: <sip:bob@example.com>\n\
        Call-ID: c1\n\
        CSeq: 7 INVITE\n\
        Content-Length: 0\n\n";

    fn branch_of(text: &str) -> String {
        let m = msg(text);
        let via = top_via(&m).unwrap();
        let c = check(&m, via).unwrap();
        branch(&m, &c, loop_hash(&m))
    }

    #[test]
    fn cancel_and_retransmission_share_the_branch() {
        let b = branch_of(INVITE);
        assert!(b.starts_with(PREFIX));
        assert_eq!(b, branch_of(INVITE));
        let cancel = INVITE
            .replace("INVITE sip", "CANCEL sip")
            .replace("7 INVITE", "7 CANCEL");
        assert_eq!(b, branch_of(&cancel));
        let tagged = cancel.replace("<sip:bob@example.com>\n", "<sip:bob@example.com>;tag=9\n");
        assert_eq!(
            b,
            branch_of(&tagged),
            "a CANCEL with a To tag still matches"
        );
        let other = INVITE.replace("branch=z9hG4bKabc", "branch=z9hG4bKdef");
        assert_ne!(b, branch_of(&other));
    }

    #[test]
    fn loop_hash_follows_routing() {
        let a = loop_hash(&msg(INVITE));
        assert_eq!(loop_part(&branch_of(INVITE)), Some(a));
        let spiral = INVITE.replace("sip:bob@example.com SIP", "sip:carol@example.com SIP");
        assert_ne!(a, loop_hash(&msg(&spiral)));
        assert_eq!(loop_part("z9hG4bKother"), None);
    }
}
