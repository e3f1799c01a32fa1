//! What a plugin answers, as C data: the decisions written into an `AnswerC` whose strings
//! the plugin lends the host until `release` (each side frees its own memory).

use crate::ffi::{AnswerC, RStr, kind};
use crate::{AuthDecision, Decision, Reply, Secret};
use std::ffi::c_void;

/// The strings an answer lends the host.
struct Owned {
    text: String,
    extra: String,
}

pub(crate) fn fill(
    answer: &mut AnswerC,
    kind_: u32,
    code: u16,
    text_: String,
    extra: String,
    ha1: bool,
) {
    let owned = Box::new(Owned { text: text_, extra });
    answer.kind = kind_;
    answer.code = code;
    answer.ha1 = ha1;
    answer.text = RStr::new(&owned.text);
    answer.extra = RStr::new(&owned.extra);
    answer.owner = Box::into_raw(owned) as *mut c_void;
}

/// An answer holding only a message (a failure's).
pub(crate) fn fill_text(answer: &mut AnswerC, message: String) {
    fill(answer, kind::CONTINUE, 0, message, String::new(), false);
}

/// Frees what an answer the plugin filled holds (one the host has copied).
pub(crate) fn release_answer(answer: &AnswerC) {
    release(answer.owner);
}

pub(crate) fn header_lines(headers: &[(String, String)]) -> String {
    let mut out = String::new();
    for (n, v) in headers {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out
}

pub(crate) fn respond(answer: &mut AnswerC, r: Reply) {
    let headers = header_lines(&r.headers);
    fill(answer, kind::RESPOND, r.code, r.reason, headers, false);
}

pub(crate) fn decision(answer: &mut AnswerC, d: Decision) {
    match d {
        Decision::Continue => answer.kind = kind::CONTINUE,
        Decision::Accept => answer.kind = kind::ACCEPT,
        Decision::Drop => answer.kind = kind::DROP,
        Decision::Respond(r) => respond(answer, r),
    }
}

/// An `authenticate` decision as an answer.
pub(crate) fn auth_answer(a: &mut AnswerC, d: AuthDecision) {
    match d {
        AuthDecision::Pass => a.kind = kind::CONTINUE,
        AuthDecision::Challenge => a.kind = kind::CHALLENGE,
        AuthDecision::ChallengeWith(algorithms) => fill(
            a,
            kind::CHALLENGE,
            0,
            String::new(),
            algorithms.join("\n"),
            false,
        ),
        AuthDecision::Credentials { username, secret } => {
            let (secret, ha1) = match secret {
                Secret::Password(p) => (p, false),
                Secret::Ha1(h) => (h, true),
            };
            fill(a, kind::CREDENTIALS, 0, username, secret, ha1);
        }
        AuthDecision::Authenticated(user) => {
            fill(a, kind::AUTHENTICATED, 0, user, String::new(), false)
        }
        AuthDecision::Respond(r) => respond(a, r),
    }
}

pub(crate) extern "C" fn release(owner: *mut c_void) {
    if !owner.is_null() {
        // SAFETY: `owner` is a pointer `fill` made with Box::into_raw, released once.
        drop(unsafe { Box::from_raw(owner as *mut Owned) });
    }
}
