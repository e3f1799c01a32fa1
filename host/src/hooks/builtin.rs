//! The built-in hook implementation, last in every chain: the `[[aliases]]` list with its
//! credentials and transports, and the `unknown_alias` policy.

use super::{
    AuthDecision, AuthRequest, BindRequest, Decision, HookError, Hooks, RequestInfo, RouteDecision,
};
use crate::auth::Secret;
use crate::config::{Challenge, Config, Transport, UnknownAlias, split_alias};
use crate::sip::Reply;
use crate::sip::digest::Algorithm;
use std::collections::HashMap;

#[derive(Debug)]
struct AliasEntry {
    username: String,
    transports: Option<Vec<Transport>>,
}

/// The built-in policy.
#[derive(Debug)]
pub struct Builtin {
    aliases: HashMap<String, AliasEntry>,
    /// The domains of the listed aliases (lower case): a request for an unlisted AOR of
    /// one of them is for an alias that does not exist.
    alias_domains: Vec<String>,
    /// The proxy is on (`[proxy] mode` other than `off`).
    routing: bool,
    secrets: HashMap<String, Secret>,
    unknown_alias: UnknownAlias,
    auth_on: bool,
}

impl Builtin {
    /// Builds the alias and credential tables from a checked configuration.
    pub fn new(config: &Config) -> Builtin {
        let mut aliases = HashMap::new();
        let mut secrets = HashMap::new();
        for a in &config.aliases {
            let Some((user, host)) = split_alias(&a.alias) else {
                continue;
            };
            let username = a.username.clone().unwrap_or_else(|| user.to_owned());
            let secret = match (&a.password, &a.ha1) {
                (Some(p), _) => Some(Secret::Password(p.clone())),
                (None, Some(h)) => Some(Secret::Ha1 {
                    algorithm: a.ha1_algorithm().unwrap_or(Algorithm::Md5),
                    hex: h.to_ascii_lowercase(),
                }),
                (None, None) => None,
            };
            if let Some(s) = secret {
                secrets.insert(username.clone(), s);
            }
            aliases.insert(
                format!("{user}@{}", host.to_ascii_lowercase()),
                AliasEntry {
                    username,
                    transports: a.transports.clone(),
                },
            );
        }
        let mut alias_domains: Vec<String> = aliases
            .keys()
            .filter_map(|a: &String| a.split_once('@').map(|(_, d)| d.to_owned()))
            .collect();
        alias_domains.sort();
        alias_domains.dedup();
        Builtin {
            aliases,
            alias_domains,
            routing: config.proxy.mode != crate::config::ProxyMode::Off,
            secrets,
            unknown_alias: config.registrar.unknown_alias,
            auth_on: config.auth.challenge != Challenge::Off,
        }
    }

    /// Whether an alias list is configured at all (without one, any alias may register).
    fn has_list(&self) -> bool {
        !self.aliases.is_empty()
    }
}

impl Hooks for Builtin {
    fn name(&self) -> &str {
        "builtin"
    }

    /// The alias list decides by AOR and user name alone.
    fn reads_bindings(&self) -> bool {
        false
    }

    fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        if self.has_list() && !self.aliases.contains_key(auth.aor) {
            tracing::info!(
                target: "sipreg::support",
                alias = auth.aor,
                source = %req.source,
                reason = "Alias not found",
                "Registration refused"
            );
            return Ok(match (self.unknown_alias, self.auth_on) {
                (UnknownAlias::Challenge, true) => AuthDecision::Challenge,
                (UnknownAlias::NotFound, _) => {
                    AuthDecision::Respond(Reply::new(404).because("Alias not found"))
                }
                _ => AuthDecision::Respond(Reply::new(403).because("Alias not found")),
            });
        }
        if !self.auth_on {
            return Ok(AuthDecision::Pass);
        }
        let Some(username) = auth.username else {
            return Ok(AuthDecision::Challenge);
        };
        match self.secrets.get(username) {
            Some(secret) => Ok(AuthDecision::Credentials {
                username: username.to_owned(),
                secret: secret.clone(),
            }),
            None => {
                tracing::info!(
                    target: "sipreg::support",
                    alias = auth.aor,
                    expected_username = self.aliases.get(auth.aor).map_or("", |a| a.username.as_str()),
                    supplied_username = username,
                    source = %req.source,
                    reason = "Invalid credentials",
                    "Registration refused"
                );
                Ok(AuthDecision::Challenge)
            }
        }
    }

    fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        let Some(entry) = self.aliases.get(bind.aor) else {
            return Ok(Decision::Continue);
        };
        if let Some(id) = bind.identity
            && id.username != entry.username
        {
            tracing::info!(
                target: "sipreg::support",
                alias = bind.aor,
                expected_username = entry.username.as_str(),
                supplied_username = id.username.as_str(),
                source = %req.source,
                reason = "Invalid credentials",
                "Registration refused"
            );
            return Ok(Decision::Respond(
                Reply::new(403).because("Invalid credentials"),
            ));
        }
        if let Some(t) = &entry.transports
            && !t.contains(&req.transport)
        {
            tracing::info!(
                target: "sipreg::support",
                alias = bind.aor,
                protocol = %req.transport,
                source = %req.source,
                reason = "Protocol not enabled for alias",
                "Registration refused"
            );
            return Ok(Decision::Respond(
                Reply::with_reason(
                    403,
                    format!(
                        "Forbidden ({} not enabled for alias)",
                        req.transport.via_token()
                    ),
                )
                .because("Protocol not enabled for alias"),
            ));
        }
        Ok(Decision::Continue)
    }

    /// A request outside a dialog for an AOR of an alias domain that is not listed: 404.
    /// Everything else is the location service's (a listed alias without binding: 480).
    fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        if !(self.routing && self.has_list()) {
            return Ok(RouteDecision::Pass);
        }
        let Some(uri) = req
            .msg
            .request_uri()
            .and_then(|u| crate::sip::uri::SipUri::parse(u).ok())
        else {
            return Ok(RouteDecision::Pass);
        };
        let domain = uri.host.to_ascii_lowercase();
        if !self.alias_domains.contains(&domain) {
            return Ok(RouteDecision::Pass);
        }
        let aor = uri.aor();
        if self.aliases.contains_key(&aor) {
            return Ok(RouteDecision::Pass);
        }
        tracing::info!(
            target: "sipreg::support",
            alias = aor.as_str(),
            source = %req.source,
            reason = "Alias not found",
            "Request not routed"
        );
        Ok(RouteDecision::Respond(Reply::new(404)))
    }
}
