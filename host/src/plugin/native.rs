//! [`NativeHooks`]: a loaded plugin behind the [`Hooks`] trait. Each hook call builds the
//! C view of the request (borrowing the host's data for the call), calls the plugin,
//! copies its answer, hands the answer's memory back (`release`), and checks the answer
//! like any other hook's (`hooks::policy`): an unknown kind, a bad code, a header the
//! registrar owns or text that is not UTF-8 fails the request with 500 and a log line.

use super::load::{self, PluginError};
use super::services;
use crate::config::{HookEntry, Transport};
use crate::hooks::{
    AuthDecision, AuthRequest, BindKind, BindRequest, Credentials, Decision, ExpireEvent, Hook,
    HookError, Hooks, RequestInfo, RouteDecision, policy,
};
use crate::sip::Reply;
use crate::sip::uri::SipUri;
use crate::store::Stores;
use plugin_api::ffi::{
    AnswerC, AuthC, BindC, BindingC, ExpireC, PluginTable, RStr, RequestC, TransportC, kind, status,
};
use std::ffi::c_void;
use std::path::Path;

/// The plugin's instance pointer.
#[derive(Debug, Clone, Copy)]
struct Instance(*mut c_void);

// SAFETY: a plugin type is `Send + Sync` (the `Plugin` trait requires it), and the
// instance is never freed.
unsafe impl Send for Instance {}
// SAFETY: as above.
unsafe impl Sync for Instance {}

/// A native plugin as a hook implementation.
#[derive(Debug)]
pub struct NativeHooks {
    /// `plugin-name (path)`, in logs and errors.
    name: String,
    table: &'static PluginTable,
    instance: Instance,
    /// The store the plugin's host table writes to (its quota counts refusals).
    kv: std::sync::Arc<dyn crate::kv::KvStore>,
}

/// An answer, copied out of the plugin's memory.
#[derive(Debug)]
struct Answer {
    kind: u32,
    code: u16,
    ha1: bool,
    text: Option<String>,
    extra: Option<String>,
}

fn transport(t: Transport) -> TransportC {
    match t {
        Transport::Udp => TransportC::Udp,
        // A plugin built before TLS and WebSocket knows only these two: the others run
        // over TCP (the transport's own name is `RequestC::transport_name`).
        Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => TransportC::Tcp,
    }
}

/// Text a plugin answered, which must be UTF-8.
fn owned(s: RStr, what: &str) -> Result<Option<String>, String> {
    if s.is_none() {
        return Ok(None);
    }
    // SAFETY: an answer's strings stay valid until `release`, which comes after this.
    match unsafe { s.get() } {
        Some(t) => Ok(Some(t.to_owned())),
        None => Err(format!("its {what} is not UTF-8")),
    }
}

impl NativeHooks {
    /// Loads the plugin of a `[[hooks]] type = "plugin"` entry and creates it with its
    /// `config` (as TOML text).
    ///
    /// # Errors
    /// A [`PluginError`] naming the path.
    pub fn load(
        entry: &HookEntry,
        base_dir: &Path,
        shared: Stores,
    ) -> Result<NativeHooks, PluginError> {
        let path = entry.file(base_dir);
        let table = load::open(&path)?;
        // SAFETY: the name is static data of the library, which stays loaded.
        let plugin = unsafe { table.name.get() }.unwrap_or("plugin").to_owned();
        let name = format!("{plugin} ({})", path.display());
        let config = toml::to_string(&entry.config).unwrap_or_default();
        let kv = shared.kv.clone();
        let host = services::table(&plugin, base_dir, shared);
        let mut error = AnswerC::empty();
        let instance = (table.create)(RStr::new(&config), host, &mut error);
        let message = owned(error.text, "message").ok().flatten();
        (table.release)(error.owner);
        if instance.is_null() {
            return Err(PluginError(format!(
                "{}: plugin {plugin} refused to start: {}",
                path.display(),
                message.unwrap_or_else(|| "no reason given".into())
            )));
        }
        Ok(NativeHooks {
            name,
            table,
            instance: Instance(instance),
            kv,
        })
    }

    fn error(&self, hook: Hook, message: String) -> HookError {
        HookError::new(self.name.clone(), hook, message)
    }

    /// Calls the plugin and copies its answer.
    fn call(
        &self,
        hook: Hook,
        f: impl FnOnce(*mut c_void, &mut AnswerC) -> u32,
    ) -> Result<Answer, HookError> {
        let mut a = AnswerC::empty();
        let st = f(self.instance.0, &mut a);
        let copied = (|| {
            Ok::<_, String>(Answer {
                kind: a.kind,
                code: a.code,
                ha1: a.ha1,
                text: owned(a.text, "text")?,
                extra: owned(a.extra, "extra text")?,
            })
        })();
        (self.table.release)(a.owner);
        let answer = copied.map_err(|e| self.error(hook, format!("bad answer: {e}")))?;
        match st {
            status::OK => Ok(answer),
            status::PANICKED => Err(self.error(
                hook,
                format!("panicked: {}", answer.text.unwrap_or_default()),
            )),
            status::FAILED => {
                Err(self.error(hook, format!("failed: {}", answer.text.unwrap_or_default())))
            }
            other => Err(self.error(hook, format!("returned the unknown status {other}"))),
        }
    }

    fn reply(&self, hook: Hook, a: &Answer) -> Result<Reply, HookError> {
        let fail = |e: String| self.error(hook, e);
        let code = policy::code(i64::from(a.code)).map_err(fail)?;
        let mut reply = match a.text.as_deref().filter(|r| !r.is_empty()) {
            Some(r) => {
                policy::reason(r).map_err(fail)?;
                Reply::with_reason(code, r.to_owned())
            }
            None => Reply::new(code),
        };
        for line in a.extra.as_deref().unwrap_or("").split("\r\n") {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| fail(format!("header line without a colon: {line}")))?;
            let (name, value) = (name.trim(), value.trim());
            policy::header(code, name, value).map_err(fail)?;
            reply = reply.header(name.to_owned(), value);
        }
        Ok(reply)
    }

    fn wrong(&self, hook: Hook, kind: u32) -> HookError {
        self.error(
            hook,
            format!("answered kind {kind}, which {hook} may not return"),
        )
    }

    fn decision(&self, hook: Hook, a: Answer) -> Result<Decision, HookError> {
        match a.kind {
            kind::CONTINUE => Ok(Decision::Continue),
            kind::ACCEPT => Ok(Decision::Accept),
            kind::DROP => Ok(Decision::Drop),
            kind::RESPOND => self.reply(hook, &a).map(Decision::Respond),
            other => Err(self.wrong(hook, other)),
        }
    }
}

/// The C view of a request; `ip` and `sans` (the certificate's SANs, one a line) must
/// outlive it.
fn request_c(req: &RequestInfo<'_>, ip: &str, sans: &str) -> RequestC {
    RequestC {
        head: RStr::new(req.msg.head()),
        source_ip: RStr::new(ip),
        source_port: req.source.port(),
        transport: transport(req.transport),
        now_ms: req.now_ms,
        transport_name: RStr::new(req.transport.as_str()),
        tls_subject: RStr::opt(req.peer_cert.map(|c| c.subject.as_str())),
        tls_sans: if req.peer_cert.is_some() {
            RStr::new(sans)
        } else {
            RStr::NONE
        },
    }
}

/// A request's certificate's SANs, one a line, as `RequestC::tls_sans` carries them.
fn sans_lines(req: &RequestInfo<'_>) -> String {
    req.peer_cert.map(|c| c.sans.join("\n")).unwrap_or_default()
}

impl Hooks for NativeHooks {
    fn name(&self) -> &str {
        &self.name
    }

    fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![("kv_over_quota", self.kv.refused())]
    }

    fn on_request(&self, req: &RequestInfo<'_>) -> Result<Decision, HookError> {
        let ip = req.source.ip().to_string();
        let sans = sans_lines(req);
        let r = request_c(req, &ip, &sans);
        let a = self.call(Hook::OnRequest, |i, a| (self.table.on_request)(i, &r, a))?;
        self.decision(Hook::OnRequest, a)
    }

    fn authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Result<AuthDecision, HookError> {
        let hook = Hook::Authenticate;
        let ip = req.source.ip().to_string();
        let sans = sans_lines(req);
        let r = request_c(req, &ip, &sans);
        let c = AuthC {
            aor: RStr::new(auth.aor),
            username: RStr::opt(auth.username),
            realm: RStr::new(auth.realm),
        };
        let a = self.call(hook, |i, a| (self.table.authenticate)(i, &r, &c, a))?;
        match a.kind {
            kind::CONTINUE => Ok(AuthDecision::Pass),
            kind::CHALLENGE => Ok(AuthDecision::Challenge),
            kind::CREDENTIALS => policy::credentials(
                a.text.unwrap_or_default(),
                a.extra.unwrap_or_default(),
                a.ha1,
            )
            .map(Credentials::decision)
            .map_err(|e| self.error(hook, e)),
            kind::AUTHENTICATED => match a.text.filter(|u| !u.is_empty()) {
                Some(username) => Ok(AuthDecision::Authenticated(username)),
                None => Err(self.error(hook, "authenticated nobody (no user name)".into())),
            },
            kind::RESPOND => self.reply(hook, &a).map(AuthDecision::Respond),
            other => Err(self.wrong(hook, other)),
        }
    }

    fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        let hook = Hook::Bind;
        let ip = req.source.ip().to_string();
        let sans = sans_lines(req);
        let r = request_c(req, &ip, &sans);
        let ids: Vec<String> = bind
            .bindings
            .iter()
            .map(|b| b.registration_id.to_string())
            .collect();
        let mut list: Vec<BindingC> = bind
            .bindings
            .iter()
            .zip(&ids)
            .map(|(b, id)| BindingC {
                contact: RStr::new(b.contact),
                expires: b.expires,
                q: b.q.map_or(-1, i32::from),
                instance: RStr::opt(b.instance.map(crate::sip::params::unquote)),
                reg_id: RStr::opt(b.reg_id),
                registration_id: RStr::new(id),
                new: b.new,
            })
            .collect();
        let mut c = BindC {
            aor: RStr::new(bind.aor),
            identity: RStr::opt(bind.identity.map(|i| i.username.as_str())),
            kind: match bind.kind {
                BindKind::Update => 0,
                BindKind::Query => 1,
                BindKind::RemoveAll => 2,
            },
            bindings: list.as_mut_ptr(),
            count: list.len(),
        };
        let a = self.call(hook, |i, a| (self.table.bind)(i, &r, &mut c, a))?;
        for (p, b) in bind.bindings.iter_mut().zip(&list) {
            p.expires = b.expires;
            p.q = match b.q {
                -1 => None,
                q @ 0..=1000 => Some(q as u16),
                q => return Err(self.error(hook, format!("set q to {q} (thousandths, 0 to 1000)"))),
            };
        }
        self.decision(hook, a)
    }

    fn expire(&self, event: &ExpireEvent<'_>) -> Result<(), HookError> {
        let id = event.registration_id.to_string();
        let source = event.source.to_string();
        let c = ExpireC {
            aor: RStr::new(event.aor),
            binding: BindingC {
                contact: RStr::new(event.contact),
                expires: 0,
                q: event.q.map_or(-1, i32::from),
                instance: RStr::opt(event.instance.map(crate::sip::params::unquote)),
                reg_id: RStr::opt(event.reg_id),
                registration_id: RStr::new(&id),
                new: false,
            },
            source: RStr::new(&source),
            transport: transport(event.transport),
            reason: event.reason.code(),
            natted: event.natted,
            transport_name: RStr::new(event.transport.as_str()),
        };
        self.call(Hook::Expire, |i, a| (self.table.expire)(i, &c, a))
            .map(|_| ())
    }

    fn route(&self, req: &RequestInfo<'_>) -> Result<RouteDecision, HookError> {
        let hook = Hook::Route;
        let ip = req.source.ip().to_string();
        let sans = sans_lines(req);
        let r = request_c(req, &ip, &sans);
        let a = self.call(hook, |i, a| (self.table.route)(i, &r, a))?;
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
                    return Err(self.error(hook, "gave no targets".into()));
                }
                for u in &uris {
                    SipUri::parse(u)
                        .map_err(|e| self.error(hook, format!("target \"{u}\": {e}")))?;
                }
                Ok(RouteDecision::Targets(uris))
            }
            kind::RESPOND => self.reply(hook, &a).map(RouteDecision::Respond),
            other => Err(self.wrong(hook, other)),
        }
    }
}
