//! What a plugin answered: copied out of its memory, then read as a hook's decision and
//! checked like any other hook's (`hooks::policy`): an unknown kind, a bad code, a header
//! the registrar owns or text that is not UTF-8 fails the request with 500 and a log line.

use crate::hooks::{AuthDecision, Credentials, Decision, Hook, HookError, RouteDecision, policy};
use crate::sip::Reply;
use crate::sip::uri::SipUri;
use plugin_api::ffi::{AnswerC, RStr, kind, status};

/// An answer, copied out of the plugin's memory.
#[derive(Debug)]
pub(crate) struct Answer {
    pub kind: u32,
    pub code: u16,
    pub ha1: bool,
    pub text: Option<String>,
    pub extra: Option<String>,
}

/// Text a plugin answered, which must be UTF-8.
pub(crate) fn owned(s: RStr, what: &str) -> Result<Option<String>, String> {
    if s.is_none() {
        return Ok(None);
    }
    // SAFETY: an answer's strings stay valid until it is released, which comes after this.
    match unsafe { s.get() } {
        Some(t) => Ok(Some(t.to_owned())),
        None => Err(format!("its {what} is not UTF-8")),
    }
}

/// The plugin's answers read for one hook of one plugin (`name` in errors).
pub(crate) struct Reader<'a> {
    pub name: &'a str,
    pub hook: Hook,
}

impl Answer {
    /// A copy of `a` (before the plugin frees it).
    pub fn copy(a: &AnswerC) -> Result<Answer, String> {
        Ok(Answer {
            kind: a.kind,
            code: a.code,
            ha1: a.ha1,
            text: owned(a.text, "text")?,
            extra: owned(a.extra, "extra text")?,
        })
    }
}

impl Reader<'_> {
    pub fn error(&self, message: String) -> HookError {
        HookError::new(self.name, self.hook, message)
    }

    /// The answer of a call that ended with `st`, or the failure it reports.
    pub fn ended(&self, st: u32, copied: Result<Answer, String>) -> Result<Answer, HookError> {
        let answer = copied.map_err(|e| self.error(format!("bad answer: {e}")))?;
        match st {
            status::OK => Ok(answer),
            status::PANICKED => {
                Err(self.error(format!("panicked: {}", answer.text.unwrap_or_default())))
            }
            status::FAILED => {
                Err(self.error(format!("failed: {}", answer.text.unwrap_or_default())))
            }
            other => Err(self.error(format!("returned the unknown status {other}"))),
        }
    }

    /// Header lines (`extra`), each checked for a reply of `code`.
    pub fn headers(&self, code: u16, a: &Answer) -> Result<Vec<(String, String)>, HookError> {
        let mut out = Vec::new();
        for line in a.extra.as_deref().unwrap_or("").split("\r\n") {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| self.error(format!("header line without a colon: {line}")))?;
            let (name, value) = (name.trim(), value.trim());
            policy::header(code, name, value).map_err(|e| self.error(e))?;
            out.push((name.to_owned(), value.to_owned()));
        }
        Ok(out)
    }

    pub fn reply(&self, a: &Answer) -> Result<Reply, HookError> {
        let code = policy::code(i64::from(a.code)).map_err(|e| self.error(e))?;
        let mut reply = match a.text.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => {
                policy::reason(r).map_err(|e| self.error(e))?;
                Reply::with_reason(code, r.to_owned())
            }
            None => Reply::new(code),
        };
        for (name, value) in self.headers(code, a)? {
            reply = reply.header(name, value);
        }
        Ok(reply)
    }

    fn wrong(&self, kind: u32) -> HookError {
        let hook = self.hook;
        self.error(format!("answered kind {kind}, which {hook} may not return"))
    }

    /// As the answer of `on_request` or `bind`.
    pub fn decision(&self, a: &Answer) -> Result<Decision, HookError> {
        match a.kind {
            kind::CONTINUE => Ok(Decision::Continue),
            kind::ACCEPT => Ok(Decision::Accept),
            kind::DROP => Ok(Decision::Drop),
            kind::RESPOND => self.reply(a).map(Decision::Respond),
            other => Err(self.wrong(other)),
        }
    }

    /// As the answer of `authenticate`.
    pub fn auth(&self, a: Answer) -> Result<AuthDecision, HookError> {
        match a.kind {
            kind::CONTINUE => Ok(AuthDecision::Pass),
            kind::CHALLENGE => match a.extra.as_deref().filter(|e| !e.is_empty()) {
                None => Ok(AuthDecision::Challenge),
                Some(names) => policy::algorithms(names.lines())
                    .map(AuthDecision::ChallengeWith)
                    .map_err(|e| self.error(e)),
            },
            kind::CREDENTIALS => policy::credentials(
                a.text.unwrap_or_default(),
                a.extra.unwrap_or_default(),
                a.ha1,
            )
            .map(Credentials::decision)
            .map_err(|e| self.error(e)),
            kind::AUTHENTICATED => match a.text.filter(|u| !u.is_empty()) {
                Some(username) => Ok(AuthDecision::Authenticated(username)),
                None => Err(self.error("authenticated nobody (no user name)".into())),
            },
            kind::RESPOND => self.reply(&a).map(AuthDecision::Respond),
            other => Err(self.wrong(other)),
        }
    }

    /// As the answer of `route`.
    pub fn route(&self, a: Answer) -> Result<RouteDecision, HookError> {
        match a.kind {
            kind::CONTINUE => Ok(RouteDecision::Pass),
            kind::TARGETS => {
                let uris: Vec<String> = a
                    .extra
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                if uris.is_empty() {
                    return Err(self.error("gave no targets".into()));
                }
                for u in &uris {
                    SipUri::parse(u).map_err(|e| self.error(format!("target \"{u}\": {e}")))?;
                }
                Ok(RouteDecision::Targets(uris))
            }
            kind::RESPOND => self.reply(&a).map(RouteDecision::Respond),
            other => Err(self.wrong(other)),
        }
    }
}
