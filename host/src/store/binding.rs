//! The vocabulary of the location service: a stored [`Binding`], the [`Update`] a REGISTER
//! asks for (its [`Change`]s), what an update did ([`Applied`], [`Event`]s), why it was
//! refused ([`UpdateError`]) and why a binding went away ([`ExpireReason`]). Every store and
//! everything above them speak it.

use super::Durable;
use crate::config::{Evict, Transport};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use uuid::Uuid;

/// One stored binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The Contact value as received, less its `expires` and `q` parameters.
    pub contact: Arc<str>,
    /// The RFC 3261 URI comparison key.
    pub key: Arc<str>,
    pub expires_at_ms: u64,
    pub q: Option<u16>,
    pub call_id: Arc<str>,
    pub cseq: u32,
    /// A hash of the top Via branch of the request that last wrote the binding, to tell a
    /// retransmission from a replay with the same CSeq. Stored as decimal text: Redis's
    /// Lua reads numbers as doubles.
    #[serde(with = "decimal")]
    pub branch: u64,
    pub registration_id: Uuid,
    pub source: SocketAddr,
    pub transport: Transport,
    /// The contact or Via address differs from the packet's source.
    pub natted: bool,
    pub instance: Option<Arc<str>>,
    pub reg_id: Option<Arc<str>>,
    /// The Path values of the REGISTER (RFC 3327), joined with `, `: the route set of
    /// requests to this binding.
    pub path: Option<Arc<str>>,
    /// When the binding was last written (for `max_contacts` eviction).
    pub refreshed_ms: u64,
    /// The binding's entry in the memory store's expiry index (not stored).
    #[serde(skip)]
    pub(super) timer: u64,
}

/// A `u64` as decimal text.
mod decimal {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// One contact of an update.
#[derive(Debug, Clone)]
pub struct Change<'a> {
    pub contact: &'a str,
    pub key: &'a str,
    /// Seconds; 0 removes.
    pub expires: u32,
    pub q: Option<u16>,
    pub instance: Option<&'a str>,
    pub reg_id: Option<&'a str>,
    /// The contact or Via address differs from the packet's source.
    pub natted: bool,
    /// The id a new binding gets (an existing one keeps its own).
    pub registration_id: Uuid,
}

impl Change<'_> {
    /// Whether `b` is the binding this change writes: the same `+sip.instance` and
    /// `reg-id` when the contact has both (RFC 5626 section 6: a device's new address
    /// replaces its old one), else the same contact URI (RFC 3261 section 10.3).
    pub(super) fn writes(&self, b: &Binding) -> bool {
        match (self.instance, self.reg_id) {
            (Some(i), Some(r)) => {
                b.instance.as_deref() == Some(i) && b.reg_id.as_deref() == Some(r)
            }
            _ => *b.key == *self.key,
        }
    }
}

/// What a REGISTER does to an AOR.
#[derive(Debug, Clone)]
pub struct Update<'a> {
    pub call_id: &'a str,
    pub cseq: u32,
    pub branch: u64,
    pub source: SocketAddr,
    pub transport: Transport,
    /// The REGISTER's Path values joined with `, `.
    pub path: Option<&'a str>,
    pub max_contacts: usize,
    /// Which binding goes when the update leaves more than `max_contacts`.
    pub evict: Evict,
    pub now_ms: u64,
    /// `Contact: *`: remove every binding.
    pub remove_all: bool,
    pub changes: Vec<Change<'a>>,
}

/// Why an update was refused; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// Same Call-ID with a CSeq not higher than the stored one.
    OutOfOrder,
    /// The request alone asks for more bindings than `max_contacts`, or would leave more
    /// with `evict = "refuse"`.
    TooManyContacts,
    /// The store did not answer (Redis down or too slow): whether the change was made is
    /// unknown, and the REGISTER gets 503 (its retry is ordered by step 7 as any other).
    Unavailable,
}

/// What happened to one binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Added(Binding),
    Refreshed(Binding),
    Removed(Binding, ExpireReason),
}

/// The outcome of an update: the AOR's bindings now, and what changed.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub bindings: Vec<Binding>,
    pub events: Vec<Event>,
    /// Kept when the change is on disk (a store that writes asynchronously); the 200
    /// waits for it.
    pub durable: Option<Durable>,
}

/// Why a binding went away: the plugin API's definition, the one the hooks see.
pub use plugin_api::ExpireReason;
