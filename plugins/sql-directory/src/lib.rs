//! `sql-directory`: device aliases and their users' credentials from a SQL database in
//! Kamailio's `subscriber` schema (`username`, `domain`, `password`, `ha1`, `ha1b`), so a
//! Kamailio deployment can point sipreg at the database it has. PostgreSQL or SQLite.
//!
//! ```toml
//! [[hooks]]
//! type = "plugin"
//! path = "../target/release/libsql_directory.so"
//! config = { url = "postgresql://kamailio@127.0.0.1:5432/kamailio", realm = "example.com" }
//! ```
//!
//! Keys: `url` (`postgresql://...`, or `sqlite:PATH` relative to the configuration's
//! folder), `realm` (the realm Kamailio computed `ha1` with: sipreg's `[auth] realm`),
//! `table` (`subscriber`), `use_domain` (true: a row is `username` at `domain`; false:
//! `username` alone, Kamailio's `use_domain = 0`), `unknown_alias` (`forbidden`: 403,
//! `not-found`: 404, `challenge`: challenged and never accepted), `workers` (4 threads,
//! each with its connection), `cache_ttl` (60 s) and `negative_ttl` (10 s), `max_queued`
//! (1024 lookups waiting at once, beyond them 503), `outage_retry_after` (30 s).
//!
//! The alias `user@domain` is the row (`user`, `domain`), owned by the digest user `user`
//! (or `user@domain`, whose HA1 is `ha1b`). Its secret: the plaintext `password` when set
//! (any algorithm), else `ha1`, an MD5 hash: a user with only HA1 is challenged with MD5
//! alone (SHA-256 needs the password). At load, the subscribers with both a password and
//! an HA1 are checked against `realm` (a wrong realm refuses the load, since every HA1
//! would then fail); every request checks it is sipreg's realm too.
//!
//! Lookups run on the plugin's own threads (`Plugin::WAITS`): the request waits parked,
//! none of sipreg's threads does; an answer kept in the cache is given at once. While the
//! database does not answer (refused, timed out, an error), a REGISTER that needs it gets
//! `503 Directory unavailable` with `Retry-After`, never a 200; the outage is logged once
//! when it starts ("Directory database not answering", with its address) and once when it
//! ends.

mod cache;
mod config;
mod db;
mod workers;

use cache::Cache;
use config::{Config, UnknownAlias};
use db::{Location, Subscriber};
use md5::{Digest, Md5};
use plugin_api::{
    Auth, AuthDecision, Bind, Decision, Done, Host, Level, Plugin, Reply, Request, Secret, Started,
    declare_plugin,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use workers::{Found, Job, Workers};

/// Whether the database answers, to log an outage once when it starts and once when it ends.
#[derive(Debug)]
struct Health {
    host: Host,
    shown: String,
    down: AtomicBool,
}

impl Health {
    fn failed(&self, error: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            self.host.log(
                Level::Warn,
                "Directory database not answering; registrations that need it get 503",
                &[("Database", &self.shown), ("Error", error)],
            );
        }
    }

    fn answered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            self.host.log(
                Level::Info,
                "Directory database answers again",
                &[("Database", &self.shown)],
            );
        }
    }
}

/// What one request asks: the alias's user and domain, and the digest user name it carries.
#[derive(Debug, Clone)]
struct Ask {
    aor: String,
    user: String,
    domain: String,
    username: Option<String>,
}

/// What the plugin's threads share with the calls: the configuration, the cache, the
/// database's health.
#[derive(Debug)]
struct Inner {
    host: Host,
    config: Config,
    /// Where the database is (`config.url`, read once).
    at: Location,
    cache: Cache,
    health: Health,
    /// Whether a request came with another realm than the directory's (logged once).
    realm_told: AtomicBool,
}

/// The plugin.
#[derive(Debug)]
pub struct SqlDirectory {
    inner: Arc<Inner>,
    workers: Workers,
}

fn md5_hex(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// At load: every sampled subscriber's HA1 is MD5(username:realm:password).
fn check_realm(at: &Location, config: &Config) -> Result<(), String> {
    let mut conn = db::Connection::open(at)?;
    for [user, domain, password, ha1] in conn.sample(&config.table, 50)? {
        if md5_hex(&format!("{user}:{}:{password}", config.realm)) != ha1.to_ascii_lowercase() {
            return Err(format!(
                "the ha1 of {user}@{domain} is not MD5(username:realm:password) for realm \"{}\": \
                 set realm to the one Kamailio computed it with",
                config.realm
            ));
        }
    }
    Ok(())
}

impl Inner {
    fn refused(&self, alias: &str, reason: &str) {
        self.host.log(
            Level::Info,
            "Registration refused",
            &[("Alias", alias), ("Reason", reason)],
        );
    }

    fn ask(auth: &Auth<'_>) -> Option<Ask> {
        let (user, domain) = auth.aor.split_once('@')?;
        Some(Ask {
            aor: auth.aor.to_owned(),
            user: user.to_owned(),
            domain: domain.to_owned(),
            username: auth.username.map(str::to_owned),
        })
    }

    fn domain<'a>(&self, ask: &'a Ask) -> Option<&'a str> {
        self.config.use_domain.then_some(ask.domain.as_str())
    }

    /// The answer for `ask` once the directory said what it holds.
    fn decide(&self, ask: &Ask, found: Option<Subscriber>) -> AuthDecision {
        let Some(s) = found else {
            self.refused(&ask.aor, "Alias not found");
            return match self.config.unknown_alias {
                UnknownAlias::NotFound => AuthDecision::Respond(Reply::new(404)),
                UnknownAlias::Challenge => AuthDecision::Challenge,
                UnknownAlias::Forbidden => AuthDecision::Respond(Reply::new(403)),
            };
        };
        let Some(username) = ask.username.as_deref() else {
            return if !s.password.is_empty() {
                AuthDecision::Challenge
            } else if !s.ha1.is_empty() || !s.ha1b.is_empty() {
                AuthDecision::ChallengeWith(vec!["MD5".into()])
            } else {
                self.refused(&ask.aor, "No credentials in the directory");
                AuthDecision::Respond(Reply::new(403))
            };
        };
        let with_domain = format!("{}@{}", ask.user, ask.domain);
        let hash = if username == ask.user {
            &s.ha1
        } else if username == with_domain {
            &s.ha1b
        } else {
            self.refused(&ask.aor, "Invalid credentials");
            return AuthDecision::Respond(Reply::new(403));
        };
        let secret = if !s.password.is_empty() {
            Secret::Password(s.password)
        } else if hash.len() == 32 {
            Secret::Ha1(hash.to_ascii_lowercase())
        } else {
            self.refused(&ask.aor, "No credentials in the directory");
            return AuthDecision::Respond(Reply::new(403));
        };
        AuthDecision::Credentials {
            username: username.to_owned(),
            secret,
        }
    }

    /// The answer to a lookup that failed: 503 with Retry-After, never a 200.
    fn outage(&self) -> AuthDecision {
        AuthDecision::Respond(
            Reply::with_reason(503, "Directory unavailable")
                .header("Retry-After", self.config.outage_retry_after.to_string()),
        )
    }

    /// Whether the request is for the directory's realm (else every HA1 would fail).
    fn realm_ok(&self, auth: &Auth<'_>) -> bool {
        if auth.realm == self.config.realm {
            return true;
        }
        if !self.realm_told.swap(true, Ordering::Relaxed) {
            self.host.log(
                Level::Error,
                "sql-directory: its realm is not sipreg's [auth] realm; every request fails",
                &[("Realm", &self.config.realm), ("Auth-realm", auth.realm)],
            );
        }
        false
    }
}

impl Plugin for SqlDirectory {
    const NAME: &'static str = "sql-directory";
    const WAITS: bool = true;

    fn create(text: &str, host: Host) -> Result<Self, String> {
        let config = Config::parse(text).map_err(|e| format!("config: {e}"))?;
        let at =
            Location::parse(&config.url, &host.config_dir()).map_err(|e| format!("config: {e}"))?;
        let shown = at.shown();
        let health = Health {
            host,
            shown: shown.clone(),
            down: AtomicBool::new(false),
        };
        match check_realm(&at, &config) {
            Ok(()) => {}
            Err(e) if e.contains("not MD5(username:realm:password)") => {
                return Err(format!("{shown}: {e}"));
            }
            // The database may come later: requests get 503 meanwhile.
            Err(e) => health.failed(&e),
        }
        let workers = Workers::start(
            config.workers,
            config.max_queued,
            at.clone(),
            config.table.clone(),
        );
        Ok(SqlDirectory {
            inner: Arc::new(Inner {
                host,
                at,
                cache: Cache::new(config.cache_ttl, config.negative_ttl, 100_000),
                config,
                health,
                realm_told: AtomicBool::new(false),
            }),
            workers,
        })
    }

    /// The same lookup on the calling thread (sipreg asks `start_authenticate` instead).
    fn authenticate(&self, _req: &Request<'_>, auth: &Auth<'_>) -> AuthDecision {
        let me = &self.inner;
        let Some(ask) = Inner::ask(auth) else {
            return AuthDecision::Respond(Reply::new(403));
        };
        let mut conn = None;
        match workers::lookup(
            &mut conn,
            &me.at,
            &me.config.table,
            &ask.user,
            me.domain(&ask),
        ) {
            Ok(found) => me.decide(&ask, found),
            Err(_) => me.outage(),
        }
    }

    fn start_authenticate(
        &self,
        _req: &Request<'_>,
        auth: &Auth<'_>,
        done: Done<AuthDecision>,
    ) -> Started<AuthDecision> {
        let me = &self.inner;
        if !me.realm_ok(auth) {
            done.fail("the directory's realm is not sipreg's [auth] realm");
            return Started::Later;
        }
        let Some(ask) = Inner::ask(auth) else {
            return Started::Now(AuthDecision::Respond(Reply::new(403)));
        };
        let domain_key = me.domain(&ask).unwrap_or("").to_owned();
        if let Some(found) = me.cache.get(&ask.user, &domain_key) {
            return Started::Now(me.decide(&ask, found));
        }
        let domain = me.domain(&ask).map(str::to_owned);
        let me = self.inner.clone();
        let job = Job {
            user: ask.user.clone(),
            domain,
            then: Box::new(move |found: Found| match found {
                Ok(found) => {
                    me.health.answered();
                    me.cache.put(&ask.user, &domain_key, found.clone());
                    done.complete(me.decide(&ask, found));
                }
                Err(e) => {
                    me.health.failed(&e);
                    done.complete(me.outage());
                }
            }),
        };
        match self.workers.submit(job) {
            Ok(()) => Started::Later,
            // The queue is full: the job (and its Done) dropped unused here.
            Err(_) => Started::Now(self.inner.outage()),
        }
    }

    /// The alias belongs to its user: the digest user must be it (`user` or `user@domain`).
    fn bind(&self, _req: &Request<'_>, bind: &mut Bind<'_>) -> Decision {
        let Some(id) = bind.identity else {
            return Decision::Continue;
        };
        let user = bind.aor.split('@').next().unwrap_or("");
        if id == user || id == bind.aor {
            Decision::Accept
        } else {
            self.inner.refused(bind.aor, "Invalid credentials");
            Decision::Respond(Reply::new(403))
        }
    }
}

declare_plugin!(SqlDirectory);
