//! What a hook function returns: `nil` or `sip.CONTINUE`, or a decision built by a `sip`
//! function (`sip.respond`, `sip.challenge`, ...), checked against the hook it is returned
//! from.

use super::Phase;
use crate::auth::Secret;
use crate::hooks::{AuthDecision, Credentials, Decision, Identity, RouteDecision};
use crate::sip::Reply;
use mlua::{UserData, UserDataMethods, Value};

/// A decision as a Lua value (userdata).
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    Continue,
    Accept,
    Respond(Reply),
    Drop,
    Challenge,
    Credentials(Credentials),
    Authenticated(String),
    Targets(Vec<String>),
}

const ON_REQUEST: u8 = Phase::OnRequest.bit();
const AUTHENTICATE: u8 = Phase::Authenticate.bit();
const BIND: u8 = Phase::Bind.bit();
const ROUTE: u8 = Phase::Route.bit();

impl Verdict {
    /// The `sip` expression that builds it.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Continue => "sip.CONTINUE",
            Verdict::Accept => "sip.accept()",
            Verdict::Respond(_) => "sip.respond()",
            Verdict::Drop => "sip.drop()",
            Verdict::Challenge => "sip.challenge()",
            Verdict::Credentials(_) => "sip.credentials()",
            Verdict::Authenticated(_) => "sip.authenticated()",
            Verdict::Targets(_) => "sip.targets()",
        }
    }

    /// The hooks that may return it.
    pub fn hooks(&self) -> u8 {
        match self {
            Verdict::Continue => ON_REQUEST | AUTHENTICATE | BIND | ROUTE,
            Verdict::Accept | Verdict::Drop => ON_REQUEST | BIND,
            Verdict::Respond(_) => ON_REQUEST | AUTHENTICATE | BIND | ROUTE,
            Verdict::Challenge | Verdict::Credentials(_) | Verdict::Authenticated(_) => {
                AUTHENTICATE
            }
            Verdict::Targets(_) => ROUTE,
        }
    }
}

impl UserData for Verdict {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, v, ()| {
            Ok(match v {
                Verdict::Respond(r) => format!("sip.respond({}, \"{}\")", r.code, r.reason),
                other => other.label().to_owned(),
            })
        });
    }
}

/// The names of the hooks in a set, for messages.
pub(crate) fn hook_names(set: u8) -> String {
    let mut names: Vec<&str> = Vec::new();
    if set & Phase::Load.bit() != 0 {
        names.push("the script's load");
    }
    names.extend(
        Phase::HOOKS
            .iter()
            .filter(|p| set & p.bit() != 0)
            .map(|p| p.name()),
    );
    names.join(", ")
}

/// The decision a hook function returned.
///
/// # Errors
/// A message for a value that is no decision, or one this hook may not return.
pub(crate) fn read(phase: Phase, value: &Value) -> Result<Verdict, String> {
    let v = match value {
        Value::Nil => return Ok(Verdict::Continue),
        Value::UserData(ud) => match ud.borrow::<Verdict>() {
            Ok(v) => v.clone(),
            Err(_) => {
                return Err(format!(
                    "{} returned a userdata that is no decision",
                    phase.name()
                ));
            }
        },
        other => {
            return Err(format!(
                "{} returned a {}; return nil, sip.CONTINUE or a decision such as sip.respond(403)",
                phase.name(),
                match other {
                    Value::Integer(_) | Value::Number(_) => "number",
                    other => other.type_name(),
                }
            ));
        }
    };
    if v.hooks() & phase.bit() == 0 {
        return Err(format!(
            "{} returned {}, which only {} may return",
            phase.name(),
            v.label(),
            hook_names(v.hooks())
        ));
    }
    Ok(v)
}

impl Verdict {
    /// As the answer of `on_request` or `bind`.
    pub fn into_decision(self) -> Decision {
        match self {
            Verdict::Accept => Decision::Accept,
            Verdict::Respond(r) => Decision::Respond(r),
            Verdict::Drop => Decision::Drop,
            _ => Decision::Continue,
        }
    }

    /// As the answer of `authenticate`.
    pub fn into_auth(self) -> AuthDecision {
        match self {
            Verdict::Respond(r) => AuthDecision::Respond(r),
            Verdict::Challenge => AuthDecision::Challenge,
            Verdict::Credentials(c) => AuthDecision::Credentials(c),
            Verdict::Authenticated(username) => AuthDecision::Authenticated(Identity { username }),
            _ => AuthDecision::Pass,
        }
    }

    /// As the answer of `route`.
    pub fn into_route(self) -> RouteDecision {
        match self {
            Verdict::Respond(r) => RouteDecision::Respond(r),
            Verdict::Targets(t) => RouteDecision::Targets(t),
            _ => RouteDecision::Pass,
        }
    }
}

/// Credentials from `sip.credentials{username=, password= | ha1=}`.
pub(crate) fn credentials(
    username: String,
    password: Option<String>,
    ha1: Option<String>,
) -> Result<Credentials, String> {
    use crate::sip::digest::Algorithm;
    if username.is_empty() {
        return Err("sip.credentials: username is empty".into());
    }
    let secret = match (password, ha1) {
        (Some(p), None) => Secret::Password(p),
        (None, Some(h)) => {
            let algorithm = match h.len() {
                32 => Algorithm::Md5,
                64 => Algorithm::Sha256,
                _ => {
                    return Err(
                        "sip.credentials: ha1 must be 32 (MD5) or 64 (SHA-256) hex digits".into(),
                    );
                }
            };
            if !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("sip.credentials: ha1 must be hex digits".into());
            }
            Secret::Ha1 {
                algorithm,
                hex: h.to_ascii_lowercase(),
            }
        }
        _ => return Err("sip.credentials: give password or ha1 (one of them)".into()),
    };
    Ok(Credentials { username, secret })
}
