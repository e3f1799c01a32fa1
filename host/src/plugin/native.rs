//! [`NativeHooks`]: a loaded plugin behind the [`Hooks`] trait. Each hook call builds the
//! C view of the request (borrowing the host's data for the call), calls the plugin,
//! copies its answer, hands the answer's memory back (`release`), and reads it as a
//! decision (`answer.rs`). A plugin with `authenticate_later` may answer that hook later
//! (`later.rs`): the request then waits on the call's end, as for a Lua `sip.http` call.

use super::answer::{self, Reader};
use super::later::Calls;
use super::load::{self, PluginError};
use super::services;
use crate::config::{Evict, HookEntry, Transport};
use crate::hooks::{
    Answer, AorPolicy, AuthDecision, AuthRequest, BindKind, BindRequest, Decision, ExpireEvent,
    Hook, HookError, Hooks, RequestInfo, RouteDecision,
};
use crate::store::Stores;
use plugin_api::ffi::{
    AnswerC, AuthC, BindC, BindingC, ExpireC, LIMIT_UNSET, PluginTable, RStr, RequestC, TransportC,
    status,
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
    /// The plugin's `authenticate` that may answer later, if it has one.
    authenticate_later: Option<load::AuthenticateLater>,
    /// Its calls that answer later.
    calls: &'static Calls,
}

fn transport(t: Transport) -> TransportC {
    match t {
        Transport::Udp => TransportC::Udp,
        // A plugin built before TLS and WebSocket knows only these two: the others run
        // over TCP (the transport's own name is `RequestC::transport_name`).
        Transport::Tcp | Transport::Tls | Transport::Ws | Transport::Wss => TransportC::Tcp,
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
        let calls: &'static Calls = Box::leak(Box::default());
        let host = services::table(&plugin, base_dir, shared, calls);
        let mut error = AnswerC::empty();
        let instance = (table.create)(RStr::new(&config), host, &mut error);
        let message = answer::owned(error.text, "message").ok().flatten();
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
            authenticate_later: load::authenticate_later(table),
            calls,
            instance: Instance(instance),
            kv,
        })
    }

    fn reader(&self, hook: Hook) -> Reader<'_> {
        Reader {
            name: &self.name,
            hook,
        }
    }

    /// Calls the plugin and copies its answer.
    fn call(
        &self,
        hook: Hook,
        f: impl FnOnce(*mut c_void, &mut AnswerC) -> u32,
    ) -> Result<answer::Answer, HookError> {
        let mut a = AnswerC::empty();
        let st = f(self.instance.0, &mut a);
        let copied = answer::Answer::copy(&a);
        (self.table.release)(a.owner);
        self.reader(hook).ended(st, copied)
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
        self.reader(Hook::OnRequest).decision(&a)
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
        let c = auth_c(auth);
        let a = self.call(hook, |i, a| (self.table.authenticate)(i, &r, &c, a))?;
        self.reader(hook).auth(a)
    }

    fn bind(
        &self,
        req: &RequestInfo<'_>,
        bind: &mut BindRequest<'_>,
    ) -> Result<Decision, HookError> {
        let hook = Hook::Bind;
        let reader = self.reader(hook);
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
            max_contacts: LIMIT_UNSET,
            min_expires: LIMIT_UNSET,
            max_expires: LIMIT_UNSET,
            evict: 0,
        };
        let a = self.call(hook, |i, a| (self.table.bind)(i, &r, &mut c, a))?;
        for (p, b) in bind.bindings.iter_mut().zip(&list) {
            p.expires = b.expires;
            p.q = match b.q {
                -1 => None,
                q @ 0..=1000 => Some(q as u16),
                q => return Err(reader.error(format!("set q to {q} (thousandths, 0 to 1000)"))),
            };
        }
        bind.policy.merge(limits(&reader, &c)?);
        let decision = reader.decision(&a)?;
        if matches!(decision, Decision::Continue | Decision::Accept) {
            for (name, value) in reader.headers(200, &a)? {
                bind.add_header(&name, &value)
                    .map_err(|e| reader.error(e))?;
            }
        }
        Ok(decision)
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
        self.reader(hook).route(a)
    }

    fn may_wait(&self) -> bool {
        self.authenticate_later.is_some()
    }

    fn start_authenticate(
        &self,
        req: &RequestInfo<'_>,
        auth: &AuthRequest<'_>,
    ) -> Answer<AuthDecision> {
        let Some(later) = self.authenticate_later else {
            return self.authenticate(req, auth).into();
        };
        let hook = Hook::Authenticate;
        let ip = req.source.ip().to_string();
        let sans = sans_lines(req);
        let r = request_c(req, &ip, &sans);
        let c = auth_c(auth);
        let pending = self.calls.begin();
        let mut a = AnswerC::empty();
        let st = later(self.instance.0, &r, &c, &mut a, pending.call);
        let copied = answer::Answer::copy(&a);
        (self.table.release)(a.owner);
        if st != status::PENDING {
            drop(pending);
            return self
                .reader(hook)
                .ended(st, copied)
                .and_then(|a| self.reader(hook).auth(a))
                .into();
        }
        let name = self.name.clone();
        Answer::Later(Box::pin(async move {
            let reader = Reader { name: &name, hook };
            let mut pending = pending;
            let (st, copied) = (&mut pending.ended).await.unwrap_or((
                status::FAILED,
                Err("the call ended without an answer".into()),
            ));
            reader.ended(st, copied).and_then(|a| reader.auth(a))
        }))
    }
}

/// The C view of what `authenticate` is asked.
fn auth_c(auth: &AuthRequest<'_>) -> AuthC {
    AuthC {
        aor: RStr::new(auth.aor),
        username: RStr::opt(auth.username),
        realm: RStr::new(auth.realm),
    }
}

/// The limits a plugin's `bind` set in `c`.
fn limits(reader: &Reader<'_>, c: &BindC) -> Result<AorPolicy, HookError> {
    let set = |v: u32| (v != LIMIT_UNSET).then_some(v);
    let evict = match c.evict {
        0 => None,
        n => Some(match plugin_api::Evict::from_code(n) {
            Some(plugin_api::Evict::Oldest) => Evict::Oldest,
            Some(plugin_api::Evict::LowestQ) => Evict::LowestQ,
            Some(plugin_api::Evict::Refuse) => Evict::Refuse,
            _ => return Err(reader.error(format!("set evict to the unknown value {n}"))),
        }),
    };
    if c.max_contacts == 0 {
        return Err(reader.error("set max_contacts to 0 (at least 1)".into()));
    }
    Ok(AorPolicy {
        max_contacts: set(c.max_contacts).map(|n| n as usize),
        min_expires: set(c.min_expires),
        max_expires: set(c.max_expires),
        evict,
    })
}
