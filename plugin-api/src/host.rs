//! The host's services as a plugin sees them: logging into sipreg's log, the shared
//! key-value store, and location lookups.

use crate::ffi::{BindingC, HostTable, KvValueC, RStr, level};
use crate::request::text;
use std::ffi::c_void;

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// A value of the shared store.
#[derive(Debug, Clone, PartialEq)]
pub enum KvValue {
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
}

/// A current binding of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBinding {
    pub contact: String,
    /// Seconds left.
    pub expires: u32,
    pub q: Option<u16>,
    pub instance: Option<String>,
    pub reg_id: Option<String>,
    pub registration_id: String,
}

/// The host's services; copy it freely (it is valid for the life of the process).
#[derive(Debug, Clone, Copy)]
pub struct Host {
    table: HostTable,
}

// SAFETY: the host's table points to its own shared, thread-safe services, valid for the
// life of the process (see `ffi::HostTable`).
unsafe impl Send for Host {}
// SAFETY: as above.
unsafe impl Sync for Host {}

impl KvValueC {
    /// The C view of a value (`None`: absent); its text is borrowed from `value`. Both
    /// sides of the ABI write values this way.
    pub fn of(value: Option<&KvValue>) -> KvValueC {
        let mut c = KvValueC {
            kind: 0,
            int: 0,
            num: 0.0,
            text: RStr::NONE,
        };
        match value {
            Some(KvValue::Bool(b)) => (c.kind, c.int) = (1, i64::from(*b)),
            Some(KvValue::Int(i)) => (c.kind, c.int) = (2, *i),
            Some(KvValue::Num(n)) => (c.kind, c.num) = (3, *n),
            Some(KvValue::Str(t)) => (c.kind, c.text) = (4, RStr::new(t)),
            None => {}
        }
        c
    }

    /// The value a C view holds: `None` for an absent one (kind 0 or unknown) or text that
    /// is not UTF-8. Both sides of the ABI read values this way.
    ///
    /// # Safety
    /// The view's text points to bytes valid for the call (what the other side passes).
    pub unsafe fn value(&self) -> Option<KvValue> {
        match self.kind {
            1 => Some(KvValue::Bool(self.int != 0)),
            2 => Some(KvValue::Int(self.int)),
            3 => Some(KvValue::Num(self.num)),
            4 => text(self.text).map(|s| KvValue::Str(s.to_owned())),
            _ => None,
        }
    }
}

extern "C" fn take_value(user: *mut c_void, value: *const KvValueC) {
    // SAFETY: `user` is the `Option<KvValue>` `kv_get` passed; `value` is valid for this
    // call, its text too.
    unsafe { *(user as *mut Option<KvValue>) = (*value).value() };
}

extern "C" fn take_binding(user: *mut c_void, binding: *const BindingC) {
    // SAFETY: `user` is the Vec `location` passed; `binding` is valid for this call.
    let (out, b) = unsafe { (&mut *(user as *mut Vec<StoredBinding>), &*binding) };
    out.push(StoredBinding {
        contact: text(b.contact).unwrap_or("").to_owned(),
        expires: b.expires,
        q: u16::try_from(b.q).ok(),
        instance: text(b.instance).map(str::to_owned),
        reg_id: text(b.reg_id).map(str::to_owned),
        registration_id: text(b.registration_id).unwrap_or("").to_owned(),
    });
}

fn ttl_ms(ttl_s: Option<f64>) -> u64 {
    ttl_s.map_or(0, |t| (t.max(0.001) * 1000.0) as u64)
}

impl Host {
    /// # Safety
    /// `table` must point to a host table valid for the life of the process.
    pub(crate) unsafe fn from_c(table: *const HostTable) -> Host {
        // SAFETY: promised by the caller.
        Host {
            table: unsafe { *table },
        }
    }

    /// Ends a call that answered later (`later.rs`).
    pub(crate) fn complete(&self, call: u64, status: u32, answer: &crate::ffi::AnswerC) {
        (self.table.complete)(self.table.ctx, call, status, answer);
    }

    /// The folder of sipreg's configuration file: resolve relative paths against it.
    pub fn config_dir(&self) -> std::path::PathBuf {
        std::path::PathBuf::from(text(self.table.config_dir).unwrap_or("."))
    }

    /// A log line in sipreg's log (target `sipreg::plugin`), with fields written
    /// `key="value"`.
    pub fn log(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        let mut rendered = String::new();
        for (k, v) in fields {
            if !rendered.is_empty() {
                rendered.push(' ');
            }
            rendered.push_str(&format!("{k}=\"{}\"", v.replace('"', "\\\"")));
        }
        let level = match level {
            Level::Error => level::ERROR,
            Level::Warn => level::WARN,
            Level::Info => level::INFO,
            Level::Debug => level::DEBUG,
        };
        (self.table.log)(
            self.table.ctx,
            level,
            RStr::new(message),
            RStr::new(&rendered),
        );
    }

    /// The value of a key of the store shared with every script and plugin.
    pub fn kv_get(&self, key: &str) -> Option<KvValue> {
        let mut out: Option<KvValue> = None;
        (self.table.kv_get)(
            self.table.ctx,
            RStr::new(key),
            take_value,
            &mut out as *mut Option<KvValue> as *mut c_void,
        );
        out
    }

    /// Sets a key, for `ttl_s` seconds when given; false when the store is full.
    pub fn kv_set(&self, key: &str, value: &KvValue, ttl_s: Option<f64>) -> bool {
        let v = KvValueC::of(Some(value));
        (self.table.kv_set)(self.table.ctx, RStr::new(key), v, ttl_ms(ttl_s))
    }

    /// Removes a key.
    pub fn kv_delete(&self, key: &str) {
        let none = KvValueC {
            kind: 0,
            int: 0,
            num: 0.0,
            text: RStr::NONE,
        };
        (self.table.kv_set)(self.table.ctx, RStr::new(key), none, 0);
    }

    /// Adds `by` to an integer key and returns the sum; a missing key starts at 0 and
    /// lives `ttl_s` seconds. `None` when the key holds another type or the store is full.
    pub fn kv_incr(&self, key: &str, by: i64, ttl_s: Option<f64>) -> Option<i64> {
        let n = (self.table.kv_incr)(self.table.ctx, RStr::new(key), by, ttl_ms(ttl_s));
        (n != i64::MIN).then_some(n)
    }

    /// The current bindings of an address-of-record.
    pub fn location(&self, aor: &str) -> Vec<StoredBinding> {
        let mut out: Vec<StoredBinding> = Vec::new();
        (self.table.location)(
            self.table.ctx,
            RStr::new(aor),
            take_binding,
            &mut out as *mut Vec<StoredBinding> as *mut c_void,
        );
        out
    }
}
