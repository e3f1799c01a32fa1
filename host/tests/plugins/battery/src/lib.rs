//! The policy of the hook batteries (`host/tests/it/battery/`), written against the plugin
//! API: the same policy as `host/tests/data/battery/policy.lua` and the built-in alias
//! list with the batteries' Rust hooks, so that each battery gets the same answers from
//! all three.

use plugin_api::{
    Auth, AuthDecision, Bind, Decision, Evict, Expire, Host, KvValue, Limits, Plugin, Reply,
    Request, RouteDecision, Secret, Transport, declare_plugin,
};

/// An alias: its owner, the owner's password, and whether TCP is enabled (UDP always is).
const ALIASES: [(&str, &str, &str, bool); 3] = [
    ("alice@example.com", "alice", "wonderland", true),
    ("bob@example.com", "bob", "builder", false),
    ("quinn@example.com", "quinn", "quinn-pw", true),
];

/// The plugin.
#[derive(Debug)]
pub struct Battery {
    host: Host,
}

fn alias(aor: &str) -> Option<&'static (&'static str, &'static str, &'static str, bool)> {
    ALIASES.iter().find(|a| a.0 == aor)
}

impl Plugin for Battery {
    const NAME: &'static str = "battery";

    fn create(_config: &str, host: Host) -> Result<Self, String> {
        Ok(Battery { host })
    }

    fn on_request(&self, req: &Request<'_>) -> Decision {
        match req.header("X-Test") {
            Some("maintenance") => Decision::Respond(Reply::with_reason(503, "Maintenance")),
            Some("drop") => Decision::Drop,
            Some("fail") => panic!("asked to fail"),
            _ => Decision::Continue,
        }
    }

    fn authenticate(&self, _req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        if alias(auth.aor).is_none() {
            return AuthDecision::Respond(Reply::new(403));
        }
        let challenge = if auth.aor == "quinn@example.com" {
            AuthDecision::ChallengeWith(vec!["SHA-256".into(), "MD5".into()])
        } else {
            AuthDecision::Challenge
        };
        let Some(user) = auth.username else {
            return challenge;
        };
        match ALIASES.iter().find(|a| a.1 == user) {
            Some(a) => AuthDecision::Credentials {
                username: user.to_owned(),
                secret: Secret::Password(a.2.to_owned()),
            },
            None => challenge,
        }
    }

    fn bind(&self, req: &Request<'_>, bind: &mut Bind<'_>) -> Decision {
        let Some(a) = alias(bind.aor) else {
            return Decision::Respond(Reply::new(403));
        };
        if bind.identity != Some(a.1) || (req.transport() == Transport::Tcp && !a.3) {
            return Decision::Respond(Reply::new(403));
        }
        if bind.aor == "quinn@example.com" {
            *bind.limits_mut() = Limits {
                max_contacts: Some(1),
                min_expires: Some(60),
                max_expires: Some(120),
                evict: Some(Evict::Refuse),
            };
            bind.add_reply_header("P-Associated-URI", "<sip:quinn@example.com>");
            bind.add_reply_header("Service-Route", "<sip:edge.example.com;lr>");
        }
        Decision::Accept
    }

    fn expire(&self, event: &Expire<'_>) {
        let key = format!("expired:{}", event.aor);
        let reason = KvValue::Str(event.reason.token().to_owned());
        self.host.kv_set(&key, &reason, None);
    }

    fn route(&self, req: &Request<'_>) -> RouteDecision {
        let uri = req.request_uri();
        if uri.starts_with("sip:support@example.com") {
            RouteDecision::Targets(vec!["sip:bob@example.com".to_owned()])
        } else if uri.starts_with("sip:closed@example.com") {
            RouteDecision::Respond(Reply::with_reason(480, "Closed"))
        } else {
            RouteDecision::Pass
        }
    }
}

declare_plugin!(Battery);
