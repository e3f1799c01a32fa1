//! The C ABI between sipreg and a plugin: only `#[repr(C)]` data, pointers with lengths,
//! integers and plain enums cross it. Each side frees what it allocated: the host's data
//! is valid for the duration of one call; an answer's strings belong to the plugin until
//! the host calls the table's `release`.
//!
//! Compatibility: [`ABI_VERSION`] changes when any type here changes incompatibly. The
//! function tables ([`PluginTable`], [`HostTable`]) start with their size and only ever
//! grow at their end, so a reader checks the size before using a field added later.

use std::ffi::c_void;

/// The ABI this crate speaks. The host refuses a plugin that exports another.
pub const ABI_VERSION: u32 = 1;

/// The symbol holding the plugin's ABI version (a `u32`), read before anything else.
pub const ABI_SYMBOL: &[u8] = b"sipreg_plugin_abi_version\0";

/// The symbol of the entry point: `extern "C" fn() -> *const PluginTable`.
pub const ENTRY_SYMBOL: &[u8] = b"sipreg_plugin_entry\0";

/// Borrowed bytes (UTF-8 text unless said otherwise). A null pointer with length 0 is
/// "absent".
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl RStr {
    /// Absent.
    pub const NONE: RStr = RStr {
        ptr: std::ptr::null(),
        len: 0,
    };

    /// Borrows a string (valid as long as `s`).
    pub fn new(s: &str) -> RStr {
        RStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Borrows a string, or absent.
    pub fn opt(s: Option<&str>) -> RStr {
        s.map_or(RStr::NONE, RStr::new)
    }

    /// Whether it is absent.
    pub fn is_none(&self) -> bool {
        self.ptr.is_null()
    }

    /// The text, if present and UTF-8.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes that stay valid for `'a`.
    pub unsafe fn get<'a>(self) -> Option<&'a str> {
        if self.ptr.is_null() {
            return None;
        }
        // SAFETY: the caller promises `len` readable bytes at `ptr` for 'a.
        let bytes = unsafe { std::slice::from_raw_parts(self.ptr, self.len) };
        std::str::from_utf8(bytes).ok()
    }
}

/// A transport.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportC {
    Udp = 0,
    Tcp = 1,
}

/// A request, as every hook but `expire` sees it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RequestC {
    /// The request's start line and headers as received, lines ending in CRLF.
    pub head: RStr,
    pub source_ip: RStr,
    pub source_port: u16,
    pub transport: TransportC,
    /// When it arrived, in milliseconds since the Unix epoch.
    pub now_ms: u64,
    // Added after c01b7a9: read only where `HostTable::request_size` covers them (a
    // plugin built before reads the fields above; `transport` is then 1, TCP, for TLS,
    // WS and WSS, which run over TCP).
    /// The transport's name: `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub transport_name: RStr,
    /// The client's verified certificate's subject (`CN=alice,O=Example`), absent without
    /// one (only TLS and WSS connections with `[tls] verify_client` have one).
    pub tls_subject: RStr,
    /// Its subject alternative names, one a line, each with its kind (`URI:sip:alice@example.com`,
    /// `DNS:phone.example.com`, `email:...`, `IP:...`).
    pub tls_sans: RStr,
}

/// What `authenticate` is asked about.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AuthC {
    pub aor: RStr,
    /// The digest user name the request carries for the realm, or absent.
    pub username: RStr,
    pub realm: RStr,
}

/// One binding of `bind` (its `expires` and `q` may be changed in place) or of a
/// location lookup.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct BindingC {
    pub contact: RStr,
    /// Seconds (for `bind`: asked for, 0 removes; for a lookup: left).
    pub expires: u32,
    /// Thousandths, or -1 for none.
    pub q: i32,
    pub instance: RStr,
    pub reg_id: RStr,
    pub registration_id: RStr,
    /// For `bind`: no such binding exists yet.
    pub new: bool,
}

/// A limit of [`BindC`] the plugin leaves as configured.
pub const LIMIT_UNSET: u32 = u32::MAX;

/// What `bind` is asked about.
#[repr(C)]
#[derive(Debug)]
pub struct BindC {
    pub aor: RStr,
    /// The authenticated user name, absent when authentication is off.
    pub identity: RStr,
    /// 0 update, 1 query, 2 remove all.
    pub kind: u32,
    pub bindings: *mut BindingC,
    pub count: usize,
    // Added after 7af00ea: read and written only where `HostTable::bind_size` covers them.
    /// This AOR's limits, which the plugin may set ([`LIMIT_UNSET`]: as configured).
    pub max_contacts: u32,
    pub min_expires: u32,
    pub max_expires: u32,
    /// Which binding goes past `max_contacts`: 0 as configured, 1 the one refreshed least
    /// recently, 2 the one with the lowest q, 3 none (the REGISTER is refused).
    pub evict: u32,
}

/// A binding that went away.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ExpireC {
    pub aor: RStr,
    pub binding: BindingC,
    pub source: RStr,
    pub transport: TransportC,
    /// 0 expired, 1 removed by the device, 2 evicted, 3 unreachable (no answer to
    /// OPTIONS), 4 removed by an operator; a newer host may send other values (read them
    /// as expired).
    pub reason: u32,
    pub natted: bool,
    // Added after c01b7a9: read only where `HostTable::expire_size` covers it.
    /// The transport's name: `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub transport_name: RStr,
}

/// The kinds of answer.
pub mod kind {
    /// No opinion.
    pub const CONTINUE: u32 = 0;
    /// Decided yes; later hooks are skipped (`on_request`, `bind`).
    pub const ACCEPT: u32 = 1;
    /// Answer with `code`, `text` as reason, `extra` as header lines.
    pub const RESPOND: u32 = 2;
    /// Send nothing (`on_request`, `bind`).
    pub const DROP: u32 = 3;
    /// A digest challenge (`authenticate`).
    pub const CHALLENGE: u32 = 4;
    /// Check the digest: `text` the user name, `extra` the password (or HA1 in hex when
    /// `ha1` is set) (`authenticate`).
    pub const CREDENTIALS: u32 = 5;
    /// Trusted as `text` without digest (`authenticate`).
    pub const AUTHENTICATED: u32 = 6;
    /// Forward to the URIs of `extra`, one per line (`route`).
    pub const TARGETS: u32 = 7;
    // Of `bind`, CONTINUE and ACCEPT may carry header lines in `extra`: added to the 200
    // (hosts after 7af00ea).
}

/// A plugin's answer. Its strings belong to the plugin (`owner`) until the host calls
/// `release(owner)`.
#[repr(C)]
#[derive(Debug)]
pub struct AnswerC {
    pub kind: u32,
    pub code: u16,
    pub ha1: bool,
    pub text: RStr,
    pub extra: RStr,
    pub owner: *mut c_void,
}

impl AnswerC {
    /// "No opinion", holding nothing.
    pub const fn empty() -> AnswerC {
        AnswerC {
            kind: kind::CONTINUE,
            code: 0,
            ha1: false,
            text: RStr::NONE,
            extra: RStr::NONE,
            owner: std::ptr::null_mut(),
        }
    }
}

/// How a call went.
pub mod status {
    /// The answer is valid.
    pub const OK: u32 = 0;
    /// The plugin failed; `text` of the answer may say why.
    pub const FAILED: u32 = 1;
    /// The plugin panicked (caught at the boundary).
    pub const PANICKED: u32 = 2;
    /// The answer comes later, through [`super::HostTable::complete`] with the call's
    /// handle (only from a function that is given one: `authenticate_later`).
    pub const PENDING: u32 = 3;
}

/// Log levels of [`HostTable::log`].
pub mod level {
    pub const ERROR: u32 = 1;
    pub const WARN: u32 = 2;
    pub const INFO: u32 = 3;
    pub const DEBUG: u32 = 4;
}

/// A value of the host's key-value store.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct KvValueC {
    /// 0 absent, 1 bool, 2 integer, 3 number, 4 string.
    pub kind: u32,
    pub int: i64,
    pub num: f64,
    pub text: RStr,
}

/// The host's services, handed to the plugin when it is created and valid for the
/// life of the process.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostTable {
    pub size: usize,
    pub ctx: *const c_void,
    /// The folder of sipreg's configuration file: relative paths in a plugin's
    /// configuration start there.
    pub config_dir: RStr,
    /// A log line: level, message, fields as `key="value"` text.
    pub log: extern "C" fn(ctx: *const c_void, level: u32, message: RStr, fields: RStr),
    /// Calls `visit(user, value)` with the value of a key (kind 0 when absent); the value
    /// is valid during the call only.
    pub kv_get: extern "C" fn(
        ctx: *const c_void,
        key: RStr,
        visit: extern "C" fn(user: *mut c_void, value: *const KvValueC),
        user: *mut c_void,
    ),
    /// Sets a key (kind 0 deletes); `ttl_ms` 0 = no expiry. False when the store is full.
    pub kv_set: extern "C" fn(ctx: *const c_void, key: RStr, value: KvValueC, ttl_ms: u64) -> bool,
    /// Adds `by` to an integer key (created with `ttl_ms` when absent); i64::MIN when the
    /// key holds another type or the store is full.
    pub kv_incr: extern "C" fn(ctx: *const c_void, key: RStr, by: i64, ttl_ms: u64) -> i64,
    /// Calls `visit(user, binding)` for every current binding of an AOR; valid during the
    /// call only.
    pub location: extern "C" fn(
        ctx: *const c_void,
        aor: RStr,
        visit: extern "C" fn(user: *mut c_void, binding: *const BindingC),
        user: *mut c_void,
    ),
    // Added after c01b7a9.
    /// `size_of::<RequestC>()` as the host was built: the fields of a request it passes.
    pub request_size: usize,
    /// `size_of::<ExpireC>()` as the host was built.
    pub expire_size: usize,
    // Added after 7af00ea.
    /// `size_of::<BindC>()` as the host was built.
    pub bind_size: usize,
    /// Ends a call that returned [`status::PENDING`]: `call` is the handle it was given,
    /// `status` and `answer` what the call itself would have returned. The host copies the
    /// answer before this returns (the plugin then frees it). Callable from any thread; a
    /// handle ends once (another completion of it, or of a call that did not return
    /// PENDING, is ignored). A call given up by the host (its deadline passed) ignores
    /// its completion too.
    pub complete: extern "C" fn(ctx: *const c_void, call: u64, status: u32, answer: *const AnswerC),
}

/// A plugin's function table, returned by its entry point.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTable {
    /// `size_of::<PluginTable>()` as the plugin was built.
    pub size: usize,
    pub abi_version: u32,
    /// The plugin's name (static).
    pub name: RStr,
    /// Creates the plugin's instance from its configuration (TOML text). On failure
    /// returns null and writes the message as `text` of `error` (released like an answer).
    pub create:
        extern "C" fn(config: RStr, host: *const HostTable, error: *mut AnswerC) -> *mut c_void,
    pub on_request:
        extern "C" fn(instance: *mut c_void, req: *const RequestC, answer: *mut AnswerC) -> u32,
    pub authenticate: extern "C" fn(
        instance: *mut c_void,
        req: *const RequestC,
        auth: *const AuthC,
        answer: *mut AnswerC,
    ) -> u32,
    pub bind: extern "C" fn(
        instance: *mut c_void,
        req: *const RequestC,
        bind: *mut BindC,
        answer: *mut AnswerC,
    ) -> u32,
    pub expire:
        extern "C" fn(instance: *mut c_void, event: *const ExpireC, answer: *mut AnswerC) -> u32,
    pub route:
        extern "C" fn(instance: *mut c_void, req: *const RequestC, answer: *mut AnswerC) -> u32,
    /// Frees what an answer holds.
    pub release: extern "C" fn(owner: *mut c_void),
    // Added after 7af00ea: read only where `size` covers it.
    /// `authenticate` that may end later: as `authenticate`, with a handle `call`; it
    /// returns [`status::PENDING`] to answer through [`HostTable::complete`] (the request
    /// waits, no thread of the host does). The request's data is valid during this call
    /// only. None: the plugin's `authenticate` always answers at once.
    pub authenticate_later: Option<
        extern "C" fn(
            instance: *mut c_void,
            req: *const RequestC,
            auth: *const AuthC,
            answer: *mut AnswerC,
            call: u64,
        ) -> u32,
    >,
}

/// The size of the function table of plugins built before `authenticate_later` (c01b7a9
/// to 7af00ea): the smallest a host reads.
pub const FIRST_TABLE_SIZE: usize = std::mem::offset_of!(PluginTable, authenticate_later);
