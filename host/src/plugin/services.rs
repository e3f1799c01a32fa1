//! The host's side of `plugin_api::ffi::HostTable`: logging into tracing (target
//! `sipreg::plugin`), the shared key-value store, location lookups and the end of a call
//! that answers later, for one plugin.

use super::later::Calls;
use crate::store::Stores;
use plugin_api::ffi::{AnswerC, BindingC, HostTable, KvValueC, RStr, level};
use std::ffi::c_void;
use std::path::Path;

/// What a plugin's host table points to (leaked: plugins live as long as the process).
#[derive(Debug)]
struct Services {
    plugin: String,
    config_dir: String,
    shared: Stores,
    calls: &'static Calls,
}

/// # Safety
/// `ctx` is the `Services` of [`table`], which is never freed.
unsafe fn services<'a>(ctx: *const c_void) -> &'a Services {
    // SAFETY: promised by the caller.
    unsafe { &*(ctx as *const Services) }
}

fn text<'a>(s: RStr) -> &'a str {
    // SAFETY: the plugin passes strings valid for the duration of the call.
    unsafe { s.get() }.unwrap_or("")
}

extern "C" fn log(ctx: *const c_void, lvl: u32, message: RStr, fields: RStr) {
    // SAFETY: the table's ctx.
    let s = unsafe { services(ctx) };
    let (plugin, message, fields) = (s.plugin.as_str(), text(message), text(fields));
    match lvl {
        level::ERROR => {
            tracing::error!(target: "sipreg::plugin", plugin, fields = %fields, "{message}")
        }
        level::WARN => {
            tracing::warn!(target: "sipreg::plugin", plugin, fields = %fields, "{message}")
        }
        level::DEBUG => {
            tracing::debug!(target: "sipreg::plugin", plugin, fields = %fields, "{message}")
        }
        _ => tracing::info!(target: "sipreg::plugin", plugin, fields = %fields, "{message}"),
    }
}

extern "C" fn kv_get(
    ctx: *const c_void,
    key: RStr,
    visit: extern "C" fn(*mut c_void, *const KvValueC),
    user: *mut c_void,
) {
    // SAFETY: the table's ctx.
    let s = unsafe { services(ctx) };
    // An unavailable store reads as absent (the plugin ABI has no error here).
    let value = s
        .shared
        .kv
        .get(text(key), s.shared.clock.now_ms())
        .unwrap_or(None);
    visit(user, &KvValueC::of(value.as_ref()));
}

fn ttl(ttl_ms: u64) -> Option<f64> {
    (ttl_ms > 0).then(|| ttl_ms as f64 / 1000.0)
}

extern "C" fn kv_set(ctx: *const c_void, key: RStr, value: KvValueC, ttl_ms: u64) -> bool {
    // SAFETY: the table's ctx.
    let s = unsafe { services(ctx) };
    let now = s.shared.clock.now_ms();
    // SAFETY: the plugin's value is valid for the call. Kind 0 (or text that is not
    // UTF-8) deletes the key.
    match unsafe { value.value() } {
        Some(v) => s.shared.kv.set(text(key), v, ttl(ttl_ms), now).is_ok(),
        None => s.shared.kv.delete(text(key), now).is_ok(),
    }
}

extern "C" fn kv_incr(ctx: *const c_void, key: RStr, by: i64, ttl_ms: u64) -> i64 {
    // SAFETY: the table's ctx.
    let s = unsafe { services(ctx) };
    s.shared
        .kv
        .incr(text(key), by, ttl(ttl_ms), s.shared.clock.now_ms())
        .unwrap_or(i64::MIN)
}

extern "C" fn location(
    ctx: *const c_void,
    aor: RStr,
    visit: extern "C" fn(*mut c_void, *const BindingC),
    user: *mut c_void,
) {
    // SAFETY: the table's ctx.
    let s = unsafe { services(ctx) };
    let now = s.shared.clock.now_ms();
    let bindings = s.shared.location.lookup(text(aor), now).unwrap_or_else(|e| {
        tracing::warn!(target: "sipreg::plugin", error = %e, "location lookup failed; the plugin sees no binding");
        Vec::new()
    });
    for b in bindings {
        let id = b.registration_id.to_string();
        let c = BindingC {
            contact: RStr::new(&b.contact),
            expires: u32::try_from(b.expires_at_ms.saturating_sub(now).div_ceil(1000))
                .unwrap_or(u32::MAX),
            q: b.q.map_or(-1, i32::from),
            instance: RStr::opt(b.instance.as_deref().map(crate::sip::params::unquote)),
            reg_id: RStr::opt(b.reg_id.as_deref()),
            registration_id: RStr::new(&id),
            new: false,
        };
        visit(user, &c);
    }
}

extern "C" fn complete(ctx: *const c_void, call: u64, status: u32, answer: *const AnswerC) {
    // SAFETY: the table's ctx.
    let s = unsafe { services(ctx) };
    if answer.is_null() {
        let missing = AnswerC::empty();
        s.calls
            .complete(call, plugin_api::ffi::status::FAILED, &missing);
        return;
    }
    // SAFETY: the plugin passes an answer valid for the call, which copies it.
    s.calls.complete(call, status, unsafe { &*answer });
}

/// The host table for one plugin (leaked, like the plugin), whose calls that answer later
/// end in `calls`.
pub(crate) fn table(
    plugin: &str,
    config_dir: &Path,
    shared: Stores,
    calls: &'static Calls,
) -> &'static HostTable {
    let ctx: &'static Services = Box::leak(Box::new(Services {
        plugin: plugin.to_owned(),
        config_dir: config_dir.display().to_string(),
        shared,
        calls,
    }));
    Box::leak(Box::new(HostTable {
        size: std::mem::size_of::<HostTable>(),
        ctx: ctx as *const Services as *const c_void,
        config_dir: RStr::new(&ctx.config_dir),
        log,
        kv_get,
        kv_set,
        kv_incr,
        location,
        request_size: std::mem::size_of::<plugin_api::ffi::RequestC>(),
        expire_size: std::mem::size_of::<plugin_api::ffi::ExpireC>(),
        bind_size: std::mem::size_of::<plugin_api::ffi::BindC>(),
        complete,
    }))
}
