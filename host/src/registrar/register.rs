//! A REGISTER read once into one value: its address-of-record, its contacts (parsed at
//! the first step that needs them, then kept), their expiry, its Path and its RFC 5626
//! flows. Every step of the procedure reads it; none parses the message again.

use super::limits::Limits;
use crate::sip::contact::{self, Contact, Contacts};
use crate::sip::name_addr::NameAddr;
use crate::sip::request::Checked;
use crate::sip::uri::SipUri;
use crate::sip::{HeaderName, Message};
use std::sync::OnceLock;

/// One REGISTER, as the procedure sees it.
#[derive(Debug)]
pub(super) struct Register<'a> {
    pub msg: &'a Message,
    pub checked: &'a Checked<'a>,
    /// The address-of-record of To (`user@domain`).
    pub aor: String,
    contacts: OnceLock<Result<Contacts<'a>, String>>,
}

impl<'a> Register<'a> {
    pub fn new(msg: &'a Message, checked: &'a Checked<'a>, aor: String) -> Register<'a> {
        Register {
            msg,
            checked,
            aor,
            contacts: OnceLock::new(),
        }
    }

    /// The Contact headers, or the reason phrase of a 400 for ones that cannot be read.
    pub fn contacts(&self) -> &Result<Contacts<'a>, String> {
        self.contacts.get_or_init(|| contact::parse(self.msg))
    }

    /// The expiry a contact asks for (its parameter, else the Expires header, else the
    /// default), before any limit.
    pub fn requested_expiry(&self, c: &Contact<'_>, limits: &Limits) -> u32 {
        c.expires
            .or(self.checked.expires)
            .unwrap_or(limits.default_expires)
    }

    /// Whether the REGISTER would add or refresh a binding (a contact with an expiry above
    /// 0); false for contacts that cannot be read (step 6 refuses them).
    pub fn adds_bindings(&self, limits: &Limits) -> bool {
        match self.contacts() {
            Ok(Contacts::List(list)) => list.iter().any(|c| self.requested_expiry(c, limits) > 0),
            _ => false,
        }
    }

    /// The Path values (RFC 3327), in order.
    pub fn path(&self) -> Vec<&'a str> {
        self.msg.elements(HeaderName::Path).collect()
    }

    /// Whether the first Path value is an edge proxy's that supports outbound (`ob`).
    pub fn edge_supports_outbound(path: &[&str]) -> bool {
        path.first().is_some_and(|p| {
            NameAddr::parse(p)
                .ok()
                .and_then(|a| SipUri::parse(a.uri).ok())
                .is_some_and(|u| u.param("ob").is_some())
        })
    }

    /// How many Via values the REGISTER carries (more than one: it came through a proxy).
    pub fn vias(&self) -> usize {
        self.msg.elements(HeaderName::Via).count()
    }

    /// Whether the device names this option tag in Supported.
    pub fn supports(&self, tag: &str) -> bool {
        self.msg
            .headers_named(HeaderName::Supported)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(tag))
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &'a str {
        self.msg.header(HeaderName::CallId).unwrap_or("")
    }
}

/// The contact as stored: as received, less its `expires` and `q` parameters (the 200
/// writes those afresh).
pub(super) fn stored_contact(c: &Contact<'_>) -> String {
    let params_at = c.raw.len() - c.addr.params.len();
    let mut out = String::with_capacity(c.raw.len());
    out.push_str(c.raw[..params_at].trim_end());
    for p in crate::sip::params::iter(c.addr.params) {
        if p.name.eq_ignore_ascii_case("expires") || p.name.eq_ignore_ascii_case("q") {
            continue;
        }
        out.push(';');
        out.push_str(p.name);
        if let Some(v) = p.value {
            out.push('=');
            out.push_str(v);
        }
    }
    out
}
