//! What hooks see and what they answer.

use super::Hook;
pub use super::outage::Outage;
use crate::auth::Secret;
use crate::config::{Evict, OnOutage, Transport};
use crate::kv::KvValue;
use crate::sip::{Message, Reply};
pub use crate::store::ExpireReason;
use std::fmt;
use std::net::SocketAddr;

/// The request a hook is asked about.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    pub msg: &'a Message,
    pub source: SocketAddr,
    pub transport: Transport,
    /// Values the hooks of this one request share.
    pub vars: &'a Vars,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The client's verified certificate (TLS or WSS with `[tls] verify_client`), for a
    /// policy that ties an alias to a certificate.
    pub peer_cert: Option<&'a crate::tls::PeerCert>,
    /// When a request that may wait must have its answer (hooks that wait past it fail);
    /// unset on the inline path, where no hook waits.
    pub deadline: Option<std::time::Instant>,
}

/// Values the hooks of one request hand each other (Lua's `ctx.vars`): strings, numbers
/// and booleans by name. They live as long as the request; their storage is made when a
/// value is first set, or when a hook call that waits takes a handle on them
/// ([`Vars::share`]) to write them back when it ends.
#[derive(Debug, Default)]
pub struct Vars(std::sync::OnceLock<Shared>);

type Shared = std::sync::Arc<parking_lot::Mutex<Vec<(String, KvValue)>>>;

impl Vars {
    fn shared(&self) -> &Shared {
        self.0.get_or_init(Shared::default)
    }

    /// A copy of every value, in the order they were first set.
    pub fn snapshot(&self) -> Vec<(String, KvValue)> {
        self.0.get().map(|v| v.lock().clone()).unwrap_or_default()
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.get().is_none_or(|v| v.lock().is_empty())
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<KvValue> {
        self.0
            .get()?
            .lock()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// Replaces every value.
    pub fn replace(&self, values: Vec<(String, KvValue)>) {
        if values.is_empty() && self.0.get().is_none() {
            return;
        }
        *self.shared().lock() = values;
    }

    /// A handle on the same values, for a hook call that ends later.
    pub fn share(&self) -> Vars {
        Vars(std::sync::OnceLock::from(self.shared().clone()))
    }
}

/// The answer of `on_request` and `bind` (the plugin API's decision, over our reply):
/// `Continue` (no opinion: the next hook, then the core), `Accept` (yes: the hooks after
/// this one are skipped), `Respond` (this reply now), `Drop` (nothing at all).
pub type Decision = plugin_api::Decision<Reply>;

/// What the core knows when it asks `authenticate`.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The address-of-record from To (`user@domain`).
    pub aor: &'a str,
    /// The digest user name the request carries for our realm, if any.
    pub username: Option<&'a str>,
    pub realm: &'a str,
}

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
}

/// A user's credentials for the core's digest check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub secret: Secret,
}

impl Credentials {
    /// The decision that hands them to the digest check.
    pub fn decision(self) -> AuthDecision {
        AuthDecision::Credentials {
            username: self.username,
            secret: self.secret,
        }
    }
}

/// The answer of `authenticate` (the plugin API's decision, over our reply and secret):
/// `Pass` (no opinion), `Challenge` (401 or 407 per configuration), `Authenticated`
/// (this user, trusted without a digest check: an IP allow-list, say), `Credentials`
/// (check the request's digest against them), `Respond` (this reply now).
pub type AuthDecision = plugin_api::AuthDecision<Reply, Secret, crate::sip::digest::Algorithm>;

/// What a REGISTER asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    /// No Contact: list the bindings.
    Query,
    /// Add, refresh or remove the listed contacts.
    Update,
    /// `Contact: *` with `Expires: 0`.
    RemoveAll,
}

/// One binding a REGISTER proposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedBinding<'a> {
    /// The Contact value as received.
    pub contact: &'a str,
    /// Seconds; 0 removes the binding. A hook may lower it, never raise it above the
    /// configured maximum.
    pub expires: u32,
    /// Thousandths (0..=1000).
    pub q: Option<u16>,
    /// The `+sip.instance` parameter as written (quotes included).
    pub instance: Option<&'a str>,
    pub reg_id: Option<&'a str>,
    /// The id of the binding this contact refreshes or removes, or the id a new binding
    /// will get. Looked up only when a hook other than the built-in one is configured;
    /// otherwise a fresh id and `new` true.
    pub registration_id: uuid::Uuid,
    /// No binding of this contact exists yet (as of the `bind` call).
    pub new: bool,
}

/// What `bind` is asked about, and what it may set beside its decision: limits for this
/// AOR and headers for the 200.
#[derive(Debug)]
pub struct BindRequest<'a> {
    pub aor: &'a str,
    /// None when authentication is off.
    pub identity: Option<&'a Identity>,
    pub kind: BindKind,
    pub bindings: Vec<ProposedBinding<'a>>,
    /// This AOR's limits, over `[registrar]`'s (and its alias's): set by the hooks.
    pub policy: AorPolicy,
    /// Headers the hooks add to the 200 (checked with [`BindRequest::add_header`]).
    reply_headers: Vec<(String, String)>,
}

impl<'a> BindRequest<'a> {
    /// A question with no limits or headers set yet.
    pub fn new(
        aor: &'a str,
        identity: Option<&'a Identity>,
        kind: BindKind,
        bindings: Vec<ProposedBinding<'a>>,
    ) -> BindRequest<'a> {
        BindRequest {
            aor,
            identity,
            kind,
            bindings,
            policy: AorPolicy::default(),
            reply_headers: Vec::new(),
        }
    }

    /// Adds a header to the 200 (`Service-Route`, `P-Associated-URI`, ...).
    ///
    /// # Errors
    /// A header the registrar writes itself (Contact, Path, Expires, Date, ...), a name
    /// that is not a token, or a value with CR, LF or NUL ([`super::policy::header`]).
    pub fn add_header(&mut self, name: &str, value: &str) -> Result<(), String> {
        super::policy::header(200, name, value)?;
        self.reply_headers.push((name.to_owned(), value.to_owned()));
        Ok(())
    }

    /// The headers added to the 200, in order.
    pub fn reply_headers(&self) -> &[(String, String)] {
        &self.reply_headers
    }

    /// What a call that waited handed back: each binding's expires and q, its limits
    /// over those set before, its headers after them.
    pub fn apply(&mut self, changes: super::BindChanges) {
        for (p, (expires, q)) in self.bindings.iter_mut().zip(changes.bindings) {
            p.expires = expires;
            p.q = q;
        }
        self.policy.merge(changes.policy);
        self.reply_headers.extend(changes.reply_headers);
    }
}

/// Limits for one AOR that `bind` may set over `[registrar]`'s: unset ones stay as
/// configured. The registrar applies them after the `bind` chain: a REGISTER asking less
/// than `min_expires` gets 423, expiry is cut to `max_expires`, and `max_contacts` with
/// `evict` decides what a REGISTER that adds one binding too many does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AorPolicy {
    pub max_contacts: Option<usize>,
    pub min_expires: Option<u32>,
    pub max_expires: Option<u32>,
    pub evict: Option<Evict>,
}

impl AorPolicy {
    /// `later`'s settings over these (a later hook's, or a waiting call's).
    pub fn merge(&mut self, later: AorPolicy) {
        self.max_contacts = later.max_contacts.or(self.max_contacts);
        self.min_expires = later.min_expires.or(self.min_expires);
        self.max_expires = later.max_expires.or(self.max_expires);
        self.evict = later.evict.or(self.evict);
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == AorPolicy::default()
    }
}

/// A binding that went away.
#[derive(Debug, Clone, Copy)]
pub struct ExpireEvent<'a> {
    pub aor: &'a str,
    pub contact: &'a str,
    pub registration_id: &'a uuid::Uuid,
    pub source: SocketAddr,
    pub transport: Transport,
    pub reason: ExpireReason,
    /// Thousandths.
    pub q: Option<u16>,
    /// `+sip.instance` as written (quotes included).
    pub instance: Option<&'a str>,
    pub reg_id: Option<&'a str>,
    pub natted: bool,
}

/// The answer of `route` (the plugin API's decision, over our reply): `Pass` (no
/// opinion), `Targets` (forward to these URIs, best first), `Respond` (this reply).
pub type RouteDecision = plugin_api::RouteDecision<Reply>;

/// A hook that failed: a script error, a plugin failure, a blown budget, or an outside
/// service that did not answer (an [`Outage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookError {
    /// The hook implementation's name (script path, plugin name).
    pub implementation: String,
    pub hook: Hook,
    pub message: String,
    /// Set when the cause is an outside service that failed: the reply is the outage's.
    pub outage: Option<Outage>,
}

impl HookError {
    /// A failure of `hook` in `implementation` (not an outage).
    pub fn new(implementation: impl Into<String>, hook: Hook, message: impl Into<String>) -> Self {
        HookError {
            implementation: implementation.into(),
            hook,
            message: message.into(),
            outage: None,
        }
    }

    /// The reply to a request whose hook failed: 500, with the one log line that names
    /// the implementation and the hook (every caller of the chain answers through this);
    /// for an outage, what `on_outage` says (503 with Retry-After by default). A caller
    /// that can challenge (`authenticate`) asks [`HookError::challenges`] first.
    pub fn reply(&self) -> Reply {
        self.log();
        match &self.outage {
            Some(o) => o.reply(),
            None => Reply::new(500),
        }
    }

    /// The log line of the failure: an error; for an outage a debug line only (the
    /// service's record logs the outage once, not per request).
    pub fn log(&self) {
        if let Some(o) = &self.outage {
            tracing::debug!(
                target: "sipreg::hooks",
                implementation = %self.implementation,
                hook = self.hook.name(),
                service = %o.service,
                error = %self.message,
                "outside service failed; request refused"
            );
        } else {
            tracing::error!(
                target: "sipreg::hooks",
                implementation = %self.implementation,
                hook = self.hook.name(),
                error = %self.message,
                "hook failed; request answered 500"
            );
        }
    }

    /// Whether the request is to be challenged again (an outage, with `on_outage =
    /// "challenge"`).
    pub fn challenges(&self) -> bool {
        self.outage
            .as_ref()
            .is_some_and(|o| o.answer == OnOutage::Challenge)
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}: {}",
            self.hook, self.implementation, self.message
        )
    }
}

impl std::error::Error for HookError {}
