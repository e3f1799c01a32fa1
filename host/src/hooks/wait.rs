//! A hook call that may wait: its answer now, or the rest of the call as a future that the
//! runtime polls while the request is parked (an HTTP or SQL lookup). An implementation
//! that never waits answers [`Answer::Now`] through the trait's default methods, and a
//! chain of such implementations never makes the core leave its inline path.

use super::HookError;
use std::future::Future;
use std::pin::Pin;

/// The rest of a hook call that waits: it owns what it needs (the request's values were
/// read when the call began) and ends with the hook's answer.
pub type Later<D> = Pin<Box<dyn Future<Output = Result<D, HookError>> + Send>>;

/// What a hook call gave at once.
pub enum Answer<D> {
    /// The call ended.
    Now(Result<D, HookError>),
    /// The call waits: this future ends it.
    Later(Later<D>),
}

impl<D: 'static> Answer<D> {
    /// The same answer, read through `f` (now, or when the call ends).
    pub fn map<E>(self, f: impl FnOnce(D) -> E + Send + 'static) -> Answer<E> {
        match self {
            Answer::Now(r) => Answer::Now(r.map(f)),
            Answer::Later(rest) => Answer::Later(Box::pin(async move { rest.await.map(f) })),
        }
    }
}

impl<D> From<Result<D, HookError>> for Answer<D> {
    fn from(r: Result<D, HookError>) -> Answer<D> {
        Answer::Now(r)
    }
}

impl<D> std::fmt::Debug for Answer<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Answer::Now(_) => "Now",
            Answer::Later(_) => "Later",
        })
    }
}

/// What a `bind` call that waited hands back (the chain writes it into the request, as a
/// call that did not wait writes it itself: [`super::BindRequest::apply`]).
#[derive(Debug, Default)]
pub struct BindChanges {
    /// For each proposed binding, in order: its `expires` and `q` as the hook left them.
    pub bindings: Vec<(u32, Option<u16>)>,
    /// The limits it set for the AOR.
    pub policy: super::AorPolicy,
    /// The headers it added to the 200, checked ([`super::policy::header`]).
    pub reply_headers: Vec<(String, String)>,
}
