//! The exported side of a plugin: the function table `declare_plugin!` returns, whose
//! functions turn the C data into safe views, call the [`Plugin`], catch any panic, and
//! hand the answer back as C data the plugin owns until `release`.

use crate::answer::{auth_answer, decision, fill, fill_text, header_lines, release, respond};
use crate::ffi::{
    self, AnswerC, AuthC, BindC, ExpireC, HostTable, PluginTable, RStr, RequestC, kind, status,
};
use crate::host::Host;
use crate::later::{Done, Started};
use crate::request::{Auth, Bind, Expire, Request, text};
use crate::{Decision, Plugin, RouteDecision};
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

// SAFETY: the table holds function pointers and a pointer to the plugin's static name.
unsafe impl Sync for PluginTable {}
// SAFETY: as above.
unsafe impl Send for PluginTable {}
// SAFETY: the host's table points to services valid and thread-safe for the process's life.
unsafe impl Sync for HostTable {}
// SAFETY: as above.
unsafe impl Send for HostTable {}

/// Runs `f` with panics caught: the status of the call.
fn guarded(answer: *mut AnswerC, f: impl FnOnce(&mut AnswerC)) -> u32 {
    if answer.is_null() {
        return status::FAILED;
    }
    // SAFETY: the host passes a valid, exclusive answer for the call.
    let answer = unsafe { &mut *answer };
    *answer = AnswerC::empty();
    match catch_unwind(AssertUnwindSafe(|| f(answer))) {
        Ok(()) => status::OK,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            // whatever the closure had filled in is abandoned (leaked, not freed twice)
            *answer = AnswerC::empty();
            fill(answer, kind::CONTINUE, 0, message, String::new(), false);
            status::PANICKED
        }
    }
}

/// What the `*mut c_void` the host holds points to: the plugin, and the host table of
/// this instance (a call that answers later completes through it: one library may be
/// loaded by several `[[hooks]]` entries, each with its own table).
struct Instance<T> {
    host: Host,
    plugin: T,
}

/// The instance behind the pointer the host holds.
///
/// # Safety
/// `instance` is a pointer `create::<T>` returned (instances are never freed).
unsafe fn instance<'a, T: Plugin>(instance: *mut c_void) -> &'a Instance<T> {
    // SAFETY: promised by the caller.
    unsafe { &*(instance as *const Instance<T>) }
}

/// The plugin behind the pointer the host holds.
///
/// # Safety
/// As [`instance`].
unsafe fn plugin<'a, T: Plugin>(p: *mut c_void) -> &'a T {
    // SAFETY: promised by the caller.
    unsafe { &instance::<T>(p).plugin }
}

extern "C" fn create<T: Plugin>(
    config: RStr,
    host: *const HostTable,
    error: *mut AnswerC,
) -> *mut c_void {
    let mut created: *mut c_void = std::ptr::null_mut();
    let st = guarded(error, |answer| {
        // SAFETY: the host passes a table valid for the process's life; its size is
        // checked before the rest is read.
        let size = if host.is_null() {
            0
        } else {
            unsafe { (*host).size }
        };
        if size < std::mem::size_of::<HostTable>() {
            fill(
                answer,
                kind::CONTINUE,
                0,
                "the host's service table is older than this plugin's plugin-api".to_owned(),
                String::new(),
                false,
            );
            return;
        }
        // SAFETY: checked above (the table is at least as large as this crate's).
        let (request_size, expire_size) = unsafe { ((*host).request_size, (*host).expire_size) };
        use std::sync::atomic::Ordering::Relaxed;
        crate::request::REQUEST_SIZE.store(request_size, Relaxed);
        crate::request::EXPIRE_SIZE.store(expire_size, Relaxed);
        // SAFETY: checked above.
        let host = unsafe { Host::from_c(host) };
        match T::create(text(config).unwrap_or(""), host) {
            Ok(plugin) => {
                created = Box::into_raw(Box::new(Instance { host, plugin })) as *mut c_void
            }
            Err(e) => fill(answer, kind::CONTINUE, 0, e, String::new(), false),
        }
    });
    if st == status::OK {
        created
    } else {
        std::ptr::null_mut()
    }
}

/// A hook of one request (`on_request`, `route`): the plugin and the request's view, in
/// `guarded`.
fn with_request<T: Plugin>(
    instance: *mut c_void,
    req: *const RequestC,
    answer: *mut AnswerC,
    f: impl FnOnce(&T, &Request<'_>, &mut AnswerC),
) -> u32 {
    guarded(answer, |a| {
        // SAFETY: the host passes its instance pointer and a request valid for the call.
        let (p, req) = unsafe { (plugin::<T>(instance), &*req) };
        f(p, &Request::from_c(req), a);
    })
}

extern "C" fn on_request<T: Plugin>(
    instance: *mut c_void,
    req: *const RequestC,
    answer: *mut AnswerC,
) -> u32 {
    with_request(instance, req, answer, |p: &T, req, a| {
        decision(a, p.on_request(req))
    })
}

extern "C" fn authenticate<T: Plugin>(
    instance: *mut c_void,
    req: *const RequestC,
    auth: *const AuthC,
    answer: *mut AnswerC,
) -> u32 {
    guarded(answer, |a| {
        // SAFETY: as in `with_request`; `auth` is valid for the call.
        let (p, req, auth) = unsafe { (plugin::<T>(instance), &*req, &*auth) };
        auth_answer(
            a,
            p.authenticate(&Request::from_c(req), &Auth::from_c(auth)),
        );
    })
}

/// `authenticate` of a plugin that may answer later: [`Plugin::start_authenticate`] with
/// the call's [`Done`]; PENDING when it started the work.
extern "C" fn authenticate_later<T: Plugin>(
    this: *mut c_void,
    req: *const RequestC,
    auth: *const AuthC,
    answer: *mut AnswerC,
    call: u64,
) -> u32 {
    let mut later = false;
    let mut dropped = false;
    let st = guarded(answer, |a| {
        // SAFETY: as in `with_request`; `auth` is valid for the call.
        let (i, req, auth) = unsafe { (instance::<T>(this), &*req, &*auth) };
        let (p, done) = (&i.plugin, Done::new(i.host, call));
        let (started, unused) = crate::later::in_call(call, || {
            p.start_authenticate(&Request::from_c(req), &Auth::from_c(auth), done)
        });
        match started {
            Started::Now(d) => auth_answer(a, d),
            Started::Later => (later, dropped) = (true, unused),
        }
    });
    match (st, later, dropped) {
        (status::OK, true, false) => status::PENDING,
        (status::OK, true, true) => {
            // SAFETY: `guarded` checked the answer pointer.
            let a = unsafe { &mut *answer };
            fill_text(a, "answered later but dropped the call's Done".into());
            status::FAILED
        }
        (st, _, _) => st,
    }
}

extern "C" fn bind<T: Plugin>(
    instance: *mut c_void,
    req: *const RequestC,
    bind: *mut BindC,
    answer: *mut AnswerC,
) -> u32 {
    guarded(answer, |a| {
        // SAFETY: as in `with_request`; `bind` and its bindings are valid and exclusive for
        // the call.
        let (p, req, bind) = unsafe { (plugin::<T>(instance), &*req, &mut *bind) };
        // SAFETY: as above.
        let mut view = unsafe { Bind::from_c(bind) };
        let d = p.bind(&Request::from_c(req), &mut view);
        let (limits, headers) = view.into_settings();
        crate::request::write_limits(bind, limits);
        match d {
            Decision::Continue | Decision::Accept if !headers.is_empty() => {
                let k = if d == Decision::Accept {
                    kind::ACCEPT
                } else {
                    kind::CONTINUE
                };
                fill(a, k, 0, String::new(), header_lines(&headers), false);
            }
            d => decision(a, d),
        }
    })
}

extern "C" fn expire<T: Plugin>(
    instance: *mut c_void,
    event: *const ExpireC,
    answer: *mut AnswerC,
) -> u32 {
    guarded(answer, |_| {
        // SAFETY: as in `with_request`; `event` is valid for the call.
        let (p, event) = unsafe { (plugin::<T>(instance), &*event) };
        p.expire(&Expire::from_c(event));
    })
}

extern "C" fn route<T: Plugin>(
    instance: *mut c_void,
    req: *const RequestC,
    answer: *mut AnswerC,
) -> u32 {
    with_request(instance, req, answer, |p: &T, req, a| match p.route(req) {
        RouteDecision::Pass => a.kind = kind::CONTINUE,
        RouteDecision::Targets(t) => fill(a, kind::TARGETS, 0, String::new(), t.join("\n"), false),
        RouteDecision::Respond(r) => respond(a, r),
    })
}

/// The function table of a plugin type (`declare_plugin!` calls this once).
pub fn table_for<T: Plugin>() -> *const PluginTable {
    Box::leak(Box::new(PluginTable {
        size: std::mem::size_of::<PluginTable>(),
        abi_version: ffi::ABI_VERSION,
        name: RStr::new(T::NAME),
        create: create::<T>,
        on_request: on_request::<T>,
        authenticate: authenticate::<T>,
        bind: bind::<T>,
        expire: expire::<T>,
        route: route::<T>,
        release,
        authenticate_later: if T::WAITS {
            Some(authenticate_later::<T>)
        } else {
            None
        },
    }))
}
