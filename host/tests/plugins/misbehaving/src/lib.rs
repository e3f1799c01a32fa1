//! A test plugin that does what the request's `X-Test` header asks: panic, answer a bad
//! code, refuse, trust, hand over credentials, use the host's store. The host must turn
//! every misbehaviour into a 500 for that one request.

use plugin_api::{
    Auth, AuthDecision, Bind, Decision, Host, KvValue, Level, Plugin, Reply, Request, Secret,
    declare_plugin,
};

/// The plugin.
#[derive(Debug)]
pub struct Misbehaving {
    host: Host,
    greeting: String,
}

impl Plugin for Misbehaving {
    const NAME: &'static str = "misbehaving";

    fn create(config: &str, host: Host) -> Result<Self, String> {
        if config.contains("refuse = true") {
            return Err("configured to refuse".into());
        }
        let greeting = config
            .lines()
            .find_map(|l| l.strip_prefix("greeting = "))
            .map(|g| g.trim_matches('"').to_owned())
            .unwrap_or_else(|| "hello".into());
        host.log(Level::Info, "created", &[("greeting", &greeting)]);
        Ok(Misbehaving { host, greeting })
    }

    fn on_request(&self, req: &Request<'_>) -> Decision {
        match req.header("X-Test") {
            Some("panic") => panic!("asked to panic"),
            Some("bad-code") => Decision::Respond(Reply::new(200)),
            Some("bad-header") => Decision::Respond(Reply::new(403).header("Via", "x")),
            Some("refuse") => Decision::Respond(
                Reply::with_reason(403, format!("{} from {}", self.greeting, req.source().0))
                    .header("X-Method", req.method()),
            ),
            Some("drop") => Decision::Drop,
            Some("kv") => {
                let n = self
                    .host
                    .kv_incr("misbehaving:count", 1, None)
                    .unwrap_or(-1);
                self.host.kv_set(
                    "misbehaving:last",
                    &KvValue::Str(req.method().into()),
                    Some(60.0),
                );
                let last = match self.host.kv_get("misbehaving:last") {
                    Some(KvValue::Str(s)) => s,
                    _ => "none".into(),
                };
                let aor = req.header("X-Aor").unwrap_or("");
                let bindings = self.host.location(aor).len();
                Decision::Respond(Reply::with_reason(
                    403,
                    format!("count {n} last {last} bindings {bindings}"),
                ))
            }
            _ => Decision::Continue,
        }
    }

    fn authenticate(&self, req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        match req.header("X-Auth") {
            Some("trust") => {
                AuthDecision::Authenticated(auth.aor.split('@').next().unwrap_or("").into())
            }
            Some("password") => match auth.username {
                Some(u) => AuthDecision::Credentials {
                    username: u.into(),
                    secret: Secret::Password("secret".into()),
                },
                None => AuthDecision::Challenge,
            },
            Some("bad-ha1") => AuthDecision::Credentials {
                username: "x".into(),
                secret: Secret::Ha1("zz".into()),
            },
            Some("panic") => panic!("authenticate panics"),
            _ => AuthDecision::Pass,
        }
    }

    fn bind(&self, req: &Request<'_>, bind: &mut Bind<'_>) -> Decision {
        if req.header("X-Bind") == Some("shorten") {
            for b in &mut bind.bindings {
                b.set_expires(b.expires().min(120));
                b.set_q(Some(500));
            }
            return Decision::Accept;
        }
        Decision::Continue
    }
}

declare_plugin!(Misbehaving);
