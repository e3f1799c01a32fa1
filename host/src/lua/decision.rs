//! What a hook function returns: `nil` or `sip.CONTINUE`, or a decision built by a `sip`
//! function (`sip.respond`, `sip.challenge`, ...; `decisions.lua`), checked here, with its
//! arguments, against the hook it is returned from.

use super::Phase;
use crate::hooks::Hook;
use crate::hooks::{AuthDecision, Credentials, Decision, RouteDecision, policy};
use crate::sip::Reply;
use crate::sip::digest::Algorithm;
use mlua::{Table, Value};

/// A decision a hook returned.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    Continue,
    Accept,
    Respond(Reply),
    Drop,
    Challenge,
    ChallengeWith(Vec<Algorithm>),
    Credentials(Credentials),
    Authenticated(String),
    Targets(Vec<String>),
}

const ON_REQUEST: u8 = Phase::In(Hook::OnRequest).bit();
const AUTHENTICATE: u8 = Phase::In(Hook::Authenticate).bit();
const BIND: u8 = Phase::In(Hook::Bind).bit();
const ROUTE: u8 = Phase::In(Hook::Route).bit();

impl Verdict {
    /// The `sip` expression that builds it.
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Continue => "sip.CONTINUE",
            Verdict::Accept => "sip.accept()",
            Verdict::Respond(_) => "sip.respond()",
            Verdict::Drop => "sip.drop()",
            Verdict::Challenge | Verdict::ChallengeWith(_) => "sip.challenge()",
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
            Verdict::Challenge
            | Verdict::ChallengeWith(_)
            | Verdict::Credentials(_)
            | Verdict::Authenticated(_) => AUTHENTICATE,
            Verdict::Targets(_) => ROUTE,
        }
    }
}

/// The names of the hooks in a set, for messages.
pub(crate) fn hook_names(set: u8) -> String {
    let mut names: Vec<&str> = Vec::new();
    if set & Phase::Load.bit() != 0 {
        names.push("the script's load");
    }
    names.extend(
        Hook::ALL
            .into_iter()
            .filter(|h| set & Phase::In(*h).bit() != 0)
            .map(Hook::name),
    );
    names.join(", ")
}

/// The decision a hook function returned, as `decisions.lua` flattens it: its kind and
/// up to three arguments.
///
/// # Errors
/// A message for a value that is no decision, a decision with bad arguments, or one this
/// hook may not return.
pub(crate) fn read(
    phase: Phase,
    kind: i64,
    a: Value,
    b: Value,
    c: Value,
) -> Result<Verdict, String> {
    // the kinds of decisions.lua
    let v = match kind {
        0 => Verdict::Continue,
        1 => Verdict::Accept,
        2 => Verdict::Drop,
        3 => match a {
            Value::Nil => Verdict::Challenge,
            t => Verdict::ChallengeWith(challenge_algorithms(t)?),
        },
        4 => Verdict::Respond(respond(a, b, c)?),
        5 => Verdict::Credentials(credentials(a, b, c)?),
        6 => match a {
            Value::String(u) if !u.as_bytes().is_empty() => {
                Verdict::Authenticated(u.to_string_lossy())
            }
            _ => return Err("sip.authenticated: the user name must be a non-empty string".into()),
        },
        7 => Verdict::Targets(targets(a)?),
        _ => {
            let what = match a {
                Value::String(t) => t.to_string_lossy(),
                _ => "value".into(),
            };
            let what = match what.as_str() {
                "integer" | "number" => "number".to_owned(),
                other => other.to_owned(),
            };
            return Err(format!(
                "{} returned a {what}; return nil, sip.CONTINUE or a decision such as sip.respond(403)",
                phase.name()
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

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `sip.challenge{ algorithms = {"MD5", ...} }`: the algorithms, in order.
fn challenge_algorithms(t: Value) -> Result<Vec<Algorithm>, String> {
    const USAGE: &str =
        "sip.challenge: give nothing, or a table {algorithms = {\"SHA-256\", \"MD5\"}}";
    let Value::Table(t) = t else {
        return Err(USAGE.into());
    };
    let Ok(Value::Table(list)) = t.raw_get::<Value>("algorithms") else {
        return Err(USAGE.into());
    };
    let mut names = Vec::new();
    for v in list.sequence_values::<Value>() {
        match v {
            Ok(Value::String(s)) => names.push(s.to_string_lossy()),
            _ => return Err("sip.challenge: algorithms must be names such as \"MD5\"".into()),
        }
    }
    policy::algorithms(names.iter().map(String::as_str)).map_err(|e| format!("sip.challenge: {e}"))
}

/// `sip.respond(code, [reason], [headers])`.
fn respond(code: Value, reason: Value, headers: Value) -> Result<Reply, String> {
    let code = match code {
        Value::Integer(c) => c,
        Value::Number(n) if n.fract() == 0.0 => n as i64,
        _ => return Err("sip.respond: the code must be a whole number".into()),
    };
    let code = policy::code(code).map_err(|e| format!("sip.respond: {e}"))?;
    let mut reply = match reason {
        Value::Nil => Reply::new(code),
        Value::String(r) => {
            let r = r.to_string_lossy();
            policy::reason(&r).map_err(|e| format!("sip.respond: {e}"))?;
            Reply::with_reason(code, r)
        }
        _ => return Err("sip.respond: the reason must be a string".into()),
    };
    match headers {
        Value::Nil => {}
        Value::Table(t) => {
            for (name, value) in header_table(&t, code).map_err(|e| format!("sip.respond: {e}"))? {
                reply = reply.header(name, value);
            }
        }
        _ => return Err("sip.respond: the headers must be a table".into()),
    }
    Ok(reply)
}

/// A table of headers for a reply of `code`: names to values, a value a string, a number
/// or a list of them (one header each), every one checked ([`policy::header`]); in the
/// order of their names.
///
/// # Errors
/// A message naming the header.
pub(crate) fn header_table(t: &Table, code: u16) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (name, value) = pair.map_err(|e| e.to_string())?;
        let Value::String(name) = name else {
            return Err("header names are strings".into());
        };
        let name = name.to_string_lossy();
        let values = match &value {
            Value::Table(list) => list
                .sequence_values::<Value>()
                .map(|v| v.ok().as_ref().and_then(text))
                .collect::<Option<Vec<String>>>(),
            v => text(v).map(|v| vec![v]),
        };
        let Some(values) = values else {
            return Err(format!(
                "header {name} must be a string, a number or a list of them, not {}",
                value.type_name()
            ));
        };
        for v in values {
            policy::header(code, &name, &v)?;
            out.push((name.clone(), v));
        }
    }
    // a table's pairs come in no set order: by name, then as listed
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `sip.targets(uri, ...)` or `sip.targets{uri, ...}`: the arguments as a packed table.
fn targets(args: Value) -> Result<Vec<String>, String> {
    let Value::Table(args) = args else {
        return Err("sip.targets: no URIs".into());
    };
    let n: i64 = args.raw_get("n").unwrap_or(0);
    let mut uris = Vec::new();
    for i in 1..=n {
        match args.raw_get::<Value>(i).map_err(|e| e.to_string())? {
            Value::String(s) => uris.push(s.to_string_lossy()),
            Value::Table(t) => {
                for u in t.sequence_values::<String>() {
                    uris.push(u.map_err(|_| "sip.targets: URIs are strings".to_owned())?);
                }
            }
            other => {
                return Err(format!(
                    "sip.targets: URIs are strings, not {}",
                    other.type_name()
                ));
            }
        }
    }
    if uris.is_empty() {
        return Err("sip.targets: give at least one URI".into());
    }
    for u in &uris {
        crate::sip::uri::SipUri::parse(u).map_err(|e| format!("sip.targets: \"{u}\": {e}"))?;
    }
    Ok(uris)
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
            Verdict::ChallengeWith(a) => AuthDecision::ChallengeWith(a),
            Verdict::Credentials(c) => c.decision(),
            Verdict::Authenticated(username) => AuthDecision::Authenticated(username),
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
fn credentials(username: Value, password: Value, ha1: Value) -> Result<Credentials, String> {
    let (secret, is_ha1) = match (text(&password), text(&ha1)) {
        (Some(p), None) => (p, false),
        (None, Some(h)) => (h, true),
        _ => return Err("sip.credentials: give password or ha1 (one of them)".into()),
    };
    policy::credentials(text(&username).unwrap_or_default(), secret, is_ha1)
        .map_err(|e| format!("sip.credentials: {e}"))
}
