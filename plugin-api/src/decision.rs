//! What a hook answers: the decisions of the five hooks, and a plugin's reply and secret.
//! sipreg's own hooks (built-in, Lua) answer with the same decision types, over its own
//! reply and secret types: one definition of what a hook may decide.

/// The answer of `on_request` and `bind`. `R` is the reply: a plugin's [`Reply`] (the
/// default), or in sipreg itself its own reply type (the one definition both sides use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<R = Reply> {
    /// No opinion: the next hook decides.
    Continue,
    /// Yes; the hooks after this one are not asked.
    Accept,
    /// Answer now.
    Respond(R),
    /// Send nothing.
    Drop,
}

/// A reply: status code (300 to 699), reason phrase, extra headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Empty: the standard phrase.
    pub reason: String,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A reply with the standard reason phrase.
    pub fn new(code: u16) -> Reply {
        Reply {
            code,
            reason: String::new(),
            headers: Vec::new(),
        }
    }

    /// A reply with its own reason phrase.
    pub fn with_reason(code: u16, reason: impl Into<String>) -> Reply {
        Reply {
            code,
            reason: reason.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A secret for the host's digest check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    Password(String),
    /// HA1 in hex for the configured realm: 32 digits for MD5, 64 for SHA-256 (SHA-512-256
    /// needs the password).
    Ha1(String),
}

/// The answer of `authenticate`; `R` the reply and `S` the secret, as for [`Decision`];
/// `A` a digest algorithm (a plugin names it: `"MD5"`, `"SHA-256"`, `"SHA-512-256"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision<R = Reply, S = Secret, A = String> {
    /// No opinion.
    Pass,
    /// Send a digest challenge, one per algorithm the configuration lists for the alias.
    Challenge,
    /// Send a digest challenge offering these algorithms, in this order, instead (e.g.
    /// MD5 alone to a phone whose User-Agent cannot register when offered more). The
    /// device's answer is then held to them, and a wrong one is challenged with them again.
    ChallengeWith(Vec<A>),
    /// Check the request's digest against this user's secret.
    Credentials { username: String, secret: S },
    /// Trust the request as this user, without digest.
    Authenticated(String),
    /// Answer now.
    Respond(R),
}

/// The answer of `route`; `R` the reply, as for [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteDecision<R = Reply> {
    /// No opinion.
    Pass,
    /// Forward to these URIs, best first.
    Targets(Vec<String>),
    /// Answer now.
    Respond(R),
}
