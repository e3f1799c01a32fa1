//! Steps 3 and 4 of a REGISTER: the `authenticate` chain, and the digest check against
//! the credentials a hook handed over.

use super::{Outcome, Registrar};
use crate::auth::digest::{ResponseInput, verify};
use crate::auth::guard::{Guard, Seen};
use crate::auth::nonce::NonceCheck;
use crate::config::{Challenge, GuardAnswer};
use crate::hooks::{
    AuthDecision, AuthRequest, Credentials as HookCredentials, Identity, RequestInfo,
};
use crate::sip::HeaderName;
use crate::sip::digest::{Algorithm, Credentials, CredentialsError, parse_credentials};
use crate::sip::{Message, Reply};
use std::borrow::Cow;

/// The reason of a wrong password or an unknown user: the failure the guard counts.
const INVALID: &str = "Invalid credentials";
/// The reason a banned source is given.
const BANNED: &str = "Too many failed authentications";

/// What the digest check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The right response for a fresh nonce with a count that went up.
    Ok,
    /// Challenge again; `stale` when only the nonce was old (or its count replayed).
    Challenge { stale: bool, reason: &'static str },
    /// Credentials that are not about this request: 400 (RFC 2617 section 3.2.2.5).
    Malformed(&'static str),
}

/// Whether the digest `uri` names the Request-URI (RFC 3261 section 19.1.4 comparison;
/// the same text at once).
fn names_request_uri(uri: &str, request_uri: &str) -> bool {
    use crate::sip::uri::SipUri;
    uri == request_uri
        || matches!((SipUri::parse(uri), SipUri::parse(request_uri)),
            (Ok(a), Ok(b)) if a.comparison_key() == b.comparison_key())
}

/// The request's credentials for our realm, if any.
///
/// # Errors
/// A 400 reply for Digest credentials that cannot be read.
pub(crate) fn find_credentials<'m>(
    msg: &'m Message,
    mode: Challenge,
    realm: &str,
) -> Result<Option<Credentials<'m>>, Reply> {
    let header = match mode {
        Challenge::Proxy => HeaderName::ProxyAuthorization,
        _ => HeaderName::Authorization,
    };
    for value in msg.headers_named(header) {
        match parse_credentials(value) {
            Ok(c) if c.realm == Some(realm) => return Ok(Some(c)),
            Ok(_) | Err(CredentialsError::OtherScheme) => {}
            Err(CredentialsError::Malformed(why)) => {
                return Err(Reply::with_reason(
                    400,
                    format!("Malformed {}: {why}", header.as_str()),
                ));
            }
        }
    }
    Ok(None)
}

impl Registrar {
    /// Steps 3 and 4: the `authenticate` chain and, when it hands over credentials, the
    /// digest check. `Ok(None)` means authentication is off.
    pub(super) async fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        aor: &str,
        now_ms: u64,
    ) -> Result<Option<Identity>, Outcome> {
        let ip = req.source.ip();
        let guard = (self.auth.mode != Challenge::Off)
            .then_some(self.auth.guard.as_ref())
            .flatten();
        let seen = guard.map_or(Seen::Clean, |g| g.seen(ip, aor, now_ms));
        if let (Seen::Banned, Some(g)) = (seen, guard) {
            return Err(self.banned(req, aor, g));
        }
        let supplied = find_credentials(req.msg, self.auth.mode, &self.auth.realm)
            .map_err(|r| self.refuse(req, aor, r, "Malformed credentials"))?;
        let ask = AuthRequest {
            aor,
            username: supplied.as_ref().and_then(|c| c.username),
            realm: &self.auth.realm,
        };
        let decision = self.chain.authenticate(req, &ask).await;
        // What the supplied nonce is, once (the digest check and a new challenge both
        // need it): a new challenge offers what the last one offered.
        let nonce = supplied
            .as_ref()
            .and_then(|c| c.nonce)
            .map(|n| self.auth.nonces.check(n, now_ms));
        let again = self.offered(aor, nonce);
        let decision = match decision {
            Ok(d) => d,
            // An outage with `on_outage = "challenge"`: asked again, never counted as a
            // failure of the device.
            Err(e) if e.challenges() && self.auth.mode != Challenge::Off => {
                e.log();
                return Err(Outcome::Reply(self.challenge_reply(&again, false, now_ms)));
            }
            Err(e) => return Err(Outcome::Reply(e.reply())),
        };
        let challenge = |offer: &[Algorithm], stale, reason: &'static str| {
            let reply = self.challenge_reply(offer, stale, now_ms);
            if supplied.is_some() {
                let user = ask.username.unwrap_or("");
                self.log.auth_failed(req, aor, user, reply.code, reason);
                if reason == INVALID
                    && let Some(g) = guard
                {
                    let failure = g.failed(ip, aor, now_ms);
                    if failure.banned_now {
                        self.log.banned(req, aor, g.ban_secs());
                    }
                    if let Some(pause) = failure.delay {
                        return Outcome::Held(reply, pause);
                    }
                }
            }
            Outcome::Reply(reply)
        };
        let succeeded = |username: String| {
            if let (Seen::Failed, Some(g)) = (seen, guard) {
                g.succeeded(ip, aor, now_ms);
            }
            Ok(Some(Identity { username }))
        };
        match decision {
            AuthDecision::Pass if self.auth.mode == Challenge::Off => Ok(None),
            // Credentials the hooks did not take (an unknown user name): refused as wrong.
            AuthDecision::Pass | AuthDecision::Challenge => Err(challenge(&again, false, INVALID)),
            AuthDecision::ChallengeWith(offer) => Err(challenge(&offer, false, INVALID)),
            AuthDecision::Authenticated(username) => succeeded(username),
            AuthDecision::Respond(r) => Err(self.refused_by_hook(req, aor, r)),
            AuthDecision::Credentials { username, secret } => {
                let creds = HookCredentials { username, secret };
                let Some(c) = supplied.as_ref() else {
                    return Err(challenge(&again, false, "No credentials"));
                };
                // Without a nonce the check finds the credentials incomplete.
                let nonce = nonce.unwrap_or(NonceCheck::Invalid);
                match self.check_digest(req.msg, &again, c, nonce, &creds, now_ms) {
                    Verdict::Ok => succeeded(creds.username),
                    Verdict::Malformed(why) => {
                        Err(self.refuse(req, aor, Reply::with_reason(400, why), why))
                    }
                    Verdict::Challenge { stale, reason } => {
                        if reason == INVALID {
                            let supplied = ask.username.unwrap_or("");
                            self.log
                                .wrong_credentials(req, aor, &creds.username, supplied);
                        }
                        Err(challenge(&again, stale, reason))
                    }
                }
            }
        }
    }

    /// A REGISTER from a source the guard banned for this alias: 403 or nothing, and no
    /// challenge computed.
    fn banned(&self, req: &RequestInfo<'_>, aor: &str, g: &Guard) -> Outcome {
        match g.answer() {
            GuardAnswer::Forbidden => {
                let reply = Reply::with_reason(403, BANNED);
                self.refuse(req, aor, reply, BANNED)
            }
            GuardAnswer::Drop => {
                self.log.dropped(req, aor, BANNED);
                Outcome::Drop
            }
        }
    }

    /// The algorithms a new challenge offers: those the supplied nonce's challenge
    /// offered when it is ours (a hook may have chosen them), else the alias's.
    fn offered(&self, aor: &str, nonce: Option<NonceCheck>) -> Cow<'_, [Algorithm]> {
        let configured = self.auth.algorithms_for(aor);
        let packed = match nonce {
            Some(NonceCheck::Fresh { offered, .. } | NonceCheck::Stale { offered }) => offered,
            _ => return Cow::Borrowed(configured),
        };
        if packed == Algorithm::pack(configured) {
            return Cow::Borrowed(configured);
        }
        Algorithm::unpack(packed).map_or(Cow::Borrowed(configured), Cow::Owned)
    }

    /// Checks the digest of `msg` against `creds`: `offered` what the nonce's challenge
    /// offered ([`Registrar::offered`]), `nonce` what the nonce is.
    pub(crate) fn check_digest(
        &self,
        msg: &Message,
        offered: &[Algorithm],
        supplied: &Credentials<'_>,
        nonce_state: NonceCheck,
        creds: &HookCredentials,
        now_ms: u64,
    ) -> Verdict {
        let challenge = |reason| Verdict::Challenge {
            stale: false,
            reason,
        };
        let (Some(username), Some(nonce), Some(uri), Some(response)) = (
            supplied.username,
            supplied.nonce,
            supplied.uri,
            supplied.response,
        ) else {
            return challenge("Incomplete credentials");
        };
        if !names_request_uri(uri, msg.request_uri().unwrap_or("")) {
            return Verdict::Malformed("Digest uri does not match the Request-URI");
        }
        if username != creds.username {
            return challenge(INVALID);
        }
        let algorithm = match supplied.algorithm {
            None => Algorithm::Md5,
            Some(t) => match Algorithm::from_token(t) {
                Some(a) => a,
                None => return challenge("Unsupported digest algorithm"),
            },
        };
        if !offered.contains(&algorithm) {
            return challenge("Digest algorithm not offered");
        }
        let (Some("auth"), Some(nc), Some(cnonce)) = (supplied.qop, supplied.nc, supplied.cnonce)
        else {
            return challenge("qop=auth missing");
        };
        let Ok(count) = u32::from_str_radix(nc, 16) else {
            return challenge("Malformed nonce count");
        };
        let method = msg.method().map_or("", |m| m.as_str());
        if nonce_state == NonceCheck::Invalid {
            return challenge("Invalid nonce");
        }
        let input = ResponseInput {
            algorithm,
            username,
            realm: &self.auth.realm,
            nonce,
            nc,
            cnonce,
            method,
            uri,
        };
        if !verify(&creds.secret, &input, response) {
            return challenge(INVALID);
        }
        match nonce_state {
            NonceCheck::Fresh { id, .. } if self.auth.counts.advance(id, count, now_ms) => {
                Verdict::Ok
            }
            NonceCheck::Fresh { .. } => Verdict::Challenge {
                stale: true,
                reason: "Nonce count replayed",
            },
            _ => Verdict::Challenge {
                stale: true,
                reason: "Stale nonce",
            },
        }
    }

    /// The 401 or 407 with one challenge per algorithm of `offer`.
    pub(crate) fn challenge_reply(&self, offer: &[Algorithm], stale: bool, now_ms: u64) -> Reply {
        let (code, header) = match self.auth.mode {
            Challenge::Proxy => (407, "Proxy-Authenticate"),
            _ => (401, "WWW-Authenticate"),
        };
        let mut reply = Reply::new(code);
        let nonce = self.auth.nonces.issue(now_ms, Algorithm::pack(offer));
        for alg in offer {
            let mut value = String::with_capacity(160);
            crate::sip::digest::write_challenge(&mut value, &self.auth.realm, &nonce, *alg, stale);
            reply = reply.header(header, value);
        }
        reply
    }
}
