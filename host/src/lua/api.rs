//! The `sip` table: one registry of every function and constant a script sees, with the
//! phases it may be called in and its documentation. [`install`] builds the table from it,
//! and [`markdown`] writes `docs/lua-api.md` from it (a test keeps the file equal).

use super::Phase;
use super::context::CallData;
use super::decision::hook_names;
use super::functions::*;
use crate::hooks::Hook;
use crate::sip::HeaderName;
use mlua::{Function, Lua, MultiValue, Table, Value};

type RustFn = fn(&Lua, MultiValue) -> mlua::Result<MultiValue>;

/// How an entry is implemented.
#[derive(Debug)]
pub(crate) enum Imp {
    /// A Rust function, which checks the phase it is called in.
    Rust(RustFn),
    /// The value of the same name in `decisions.lua` (decisions are built in Lua, and
    /// checked when a hook returns them: `phases` says which hooks may).
    Lua,
    /// A `sip.http` function (`request`, `get`, `post`): one that waits (`http.rs`).
    Http,
}

/// One entry of the `sip` table.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The name under `sip` (`header`, `kv.get`).
    pub name: &'static str,
    pub syntax: &'static str,
    /// Where it may be called, or for a decision, which hooks may return it (bits of
    /// [`Phase`]).
    pub phases: u8,
    pub section: Section,
    pub doc: &'static str,
    pub imp: Imp,
}

/// The documentation's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Request,
    Decision,
    Store,
    Log,
    Data,
    Outside,
    Script,
}

impl Section {
    const ALL: [Section; 7] = [
        Section::Request,
        Section::Decision,
        Section::Store,
        Section::Log,
        Section::Data,
        Section::Outside,
        Section::Script,
    ];

    fn title(self) -> &'static str {
        match self {
            Section::Request => "The request",
            Section::Decision => "Decisions",
            Section::Store => "Bindings and the shared store",
            Section::Log => "Logging",
            Section::Data => "Data",
            Section::Outside => "Outside services",
            Section::Script => "The script",
        }
    }
}

const LOAD: u8 = Phase::Load.bit();
const REQUEST: u8 = Phase::In(Hook::OnRequest).bit()
    | Phase::In(Hook::Authenticate).bit()
    | Phase::In(Hook::Bind).bit()
    | Phase::In(Hook::Route).bit();
const EXPIRE: u8 = Phase::In(Hook::Expire).bit();
const ANY: u8 = LOAD | REQUEST | EXPIRE;
// Decisions: the hooks that may return them (they may be built anywhere).
const DECIDE: u8 = REQUEST;
const AUTH: u8 = Phase::In(Hook::Authenticate).bit();
const ON_REQUEST_BIND: u8 = Phase::In(Hook::OnRequest).bit() | Phase::In(Hook::Bind).bit();
const ROUTE: u8 = Phase::In(Hook::Route).bit();

macro_rules! entry {
    ($name:literal, $syntax:literal, $phases:expr, $section:ident, $doc:literal, lua) => {
        entry!(@ $name, $syntax, $phases, $section, $doc, Imp::Lua)
    };
    ($name:literal, $syntax:literal, $phases:expr, $section:ident, $doc:literal, http) => {
        entry!(@ $name, $syntax, $phases, $section, $doc, Imp::Http)
    };
    ($name:literal, $syntax:literal, $phases:expr, $section:ident, $doc:literal, $imp:expr) => {
        entry!(@ $name, $syntax, $phases, $section, $doc, Imp::Rust($imp))
    };
    (@ $name:literal, $syntax:literal, $phases:expr, $section:ident, $doc:literal, $imp:expr) => {
        Entry {
            name: $name,
            syntax: $syntax,
            phases: $phases,
            section: Section::$section,
            doc: $doc,
            imp: $imp,
        }
    };
}

/// Every entry of the `sip` table.
pub(crate) static REGISTRY: &[Entry] = &[
    entry!(
        "method",
        "sip.method() -> string",
        REQUEST,
        Request,
        "The request's method, as written (`REGISTER`).",
        |lua, _| with_msg(lua, |m| ret(lua, m.method().map(ToString::to_string)))
    ),
    entry!(
        "request_uri",
        "sip.request_uri() -> string",
        REQUEST,
        Request,
        "The Request-URI as written.",
        |lua, _| with_msg(lua, |m| ret(lua, m.request_uri()))
    ),
    entry!(
        "from",
        "sip.from() -> {uri, user, host, port, tag, display_name}",
        REQUEST,
        Request,
        "The From header: its URI, the URI's user, host and port, the tag and the display name (unquoted). Fields that are absent are nil.",
        |lua, _| header_table(lua, HeaderName::From)
    ),
    entry!(
        "to",
        "sip.to() -> {uri, user, host, port, tag, display_name}",
        REQUEST,
        Request,
        "The To header, as `sip.from()` gives From. For a REGISTER, `user@host` of To is the address-of-record.",
        |lua, _| header_table(lua, HeaderName::To)
    ),
    entry!(
        "call_id",
        "sip.call_id() -> string",
        REQUEST,
        Request,
        "The Call-ID.",
        |lua, _| with_msg(lua, |m| ret(lua, m.header(HeaderName::CallId)))
    ),
    entry!(
        "cseq",
        "sip.cseq() -> integer, method",
        REQUEST,
        Request,
        "The CSeq number and method.",
        |lua, _| with_msg(lua, |m| {
            let v = m.header(HeaderName::CSeq).unwrap_or("");
            let (n, method) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
            ret(lua, (n.trim().parse::<i64>().ok(), method.trim()))
        })
    ),
    entry!(
        "contacts",
        "sip.contacts() -> {{uri, display_name, expires, q, params, raw}, ...} | nil, reason",
        REQUEST,
        Request,
        "The Contact addresses of every Contact header, in order. `expires` is the contact's own parameter (nil when absent), `q` a number from 0 to 1, `params` every parameter by lower-case name (a parameter without value is `true`; `+sip.instance` is unquoted), `raw` the value as received. `Contact: *` gives one entry with `wildcard = true`; no Contact gives an empty table; a malformed Contact gives nil and the reason.",
        contacts
    ),
    entry!(
        "header",
        "sip.header(name) -> string | nil",
        REQUEST,
        Request,
        "The value of the first header called `name` (any case; compact forms such as `f` for From are the same header).",
        |lua, args| {
            let (name,): (String,) = lua.unpack_multi(args)?;
            with_msg(lua, |m| ret(lua, m.header_by_name(&name)))
        }
    ),
    entry!(
        "headers",
        "sip.headers(name) -> {string, ...}",
        REQUEST,
        Request,
        "The values of every header called `name`, in order (an empty table when there is none).",
        |lua, args| {
            let (name,): (String,) = lua.unpack_multi(args)?;
            with_msg(lua, |m| {
                let values: Vec<&str> = m.headers_by_name(&name).collect();
                ret(lua, lua.create_sequence_from(values)?)
            })
        }
    ),
    entry!(
        "route_set",
        "sip.route_set() -> {string, ...}",
        REQUEST,
        Request,
        "The request's route set: every Route value, one entry per URI, in order (`<sip:proxy.example.com;lr>`); empty when there is none.",
        |lua, _| with_msg(lua, |m| {
            let routes: Vec<&str> = m.elements(crate::sip::HeaderName::Route).collect();
            ret(lua, lua.create_sequence_from(routes)?)
        })
    ),
    entry!(
        "user_agent",
        "sip.user_agent() -> string | nil",
        REQUEST,
        Request,
        "The User-Agent header.",
        |lua, _| with_msg(lua, |m| ret(lua, m.header_by_name("User-Agent")))
    ),
    entry!(
        "source",
        "sip.source() -> ip, port",
        REQUEST,
        Request,
        "The address the request came from (the packet's, not the Via's).",
        |lua, _| {
            let src = lua.app_data_ref::<CallData>().and_then(|c| c.source);
            ret(
                lua,
                (src.map(|s| s.ip().to_string()), src.map(|s| s.port())),
            )
        }
    ),
    entry!(
        "transport",
        "sip.transport() -> \"udp\" | \"tcp\" | \"tls\" | \"ws\" | \"wss\"",
        REQUEST,
        Request,
        "The transport the request came over.",
        |lua, _| {
            let t = lua.app_data_ref::<CallData>().and_then(|c| c.transport);
            ret(lua, t.map(|t| t.as_str()))
        }
    ),
    entry!(
        "tls_peer",
        "sip.tls_peer() -> {subject = string, sans = {string, ...}} | nil",
        REQUEST,
        Request,
        "The client's certificate, verified against `[tls] ca`, on a TLS or WSS connection that showed one (`[tls] verify_client`): its subject (`CN=alice,O=Example`) and its subject alternative names, each with its kind (`URI:sip:alice@example.com`, `DNS:phone.example.com`, `email:alice@example.com`, `IP:192.0.2.1`). nil otherwise. A policy can tie an alias to a certificate with it.",
        |lua, _| {
            let Some(cert) = lua
                .app_data_ref::<CallData>()
                .and_then(|c| c.peer_cert.clone())
            else {
                return ret(lua, mlua::Value::Nil);
            };
            let t = lua.create_table()?;
            t.raw_set("subject", cert.subject.as_str())?;
            t.raw_set(
                "sans",
                lua.create_sequence_from(cert.sans.iter().map(String::as_str))?,
            )?;
            ret(lua, t)
        }
    ),
    entry!(
        "CONTINUE",
        "sip.CONTINUE",
        DECIDE,
        Decision,
        "No opinion: the next hook, and then the registrar, decide. Returning nil means the same.",
        lua
    ),
    entry!(
        "accept",
        "sip.accept()",
        ON_REQUEST_BIND,
        Decision,
        "Yes, and the hooks after this one (the built-in alias list among them) are not asked. In `on_request` the request goes on to the registrar; in `bind` the bindings are written.",
        lua
    ),
    entry!(
        "respond",
        "sip.respond(code, [reason], [headers])",
        DECIDE,
        Decision,
        "Answer now with `code` (300 to 699), the reason phrase (default: the standard one) and extra headers (`{[\"Retry-After\"] = 300}`). Via, From, To, Call-ID, CSeq and Content-Length are the registrar's.",
        lua
    ),
    entry!(
        "drop",
        "sip.drop()",
        ON_REQUEST_BIND,
        Decision,
        "Send nothing at all (a UDP client will retransmit and give up).",
        lua
    ),
    entry!(
        "challenge",
        "sip.challenge([{algorithms = {...}}])",
        AUTH,
        Decision,
        "Send a digest challenge (401 or 407, per `[auth] challenge`), one per algorithm `[auth] algorithms` (or the alias's `algorithms`) lists; or, with `algorithms` (`\"SHA-512-256\"`, `\"SHA-256\"`, `\"MD5\"`, in the order to offer them), one per algorithm given: e.g. MD5 alone when `sip.user_agent()` names a phone that cannot register when offered more. The device's answer is held to what was offered, and a wrong one is challenged with the same algorithms again.",
        lua
    ),
    entry!(
        "credentials",
        "sip.credentials{username = ..., password = ... | ha1 = ...}",
        AUTH,
        Decision,
        "Check the request's digest against these credentials: a password (any algorithm), or HA1 in hex (32 digits for MD5, 64 for SHA-256, for the configured realm; SHA-512-256 needs the password). A wrong digest is challenged again; a right one authenticates `username`.",
        lua
    ),
    entry!(
        "authenticated",
        "sip.authenticated(username)",
        AUTH,
        Decision,
        "Trust the request as `username` without a digest check (an allow-listed network, say).",
        lua
    ),
    entry!(
        "targets",
        "sip.targets(uri, ...) | sip.targets{uri, ...}",
        ROUTE,
        Decision,
        "Where a request that is not for the registrar goes, best first (SIP or SIPS URIs).",
        lua
    ),
    entry!(
        "location",
        "sip.location(aor) -> {binding, ...}",
        REQUEST | EXPIRE,
        Store,
        "The current bindings of an address-of-record (`user@domain`), each a binding table (below) with `expires` the seconds left.",
        location
    ),
    entry!(
        "kv.get",
        "sip.kv.get(key) -> value | nil",
        ANY,
        Store,
        "A value of the store shared by every state and script of this server, and of every node with `[store] type = \"redis\"` (strings, numbers, booleans). An unreachable Redis raises an error.",
        kv_get
    ),
    entry!(
        "kv.set",
        "sip.kv.set(key, value, [ttl])",
        ANY,
        Store,
        "Stores a value, for `ttl` seconds when given (else until deleted). `nil` deletes.",
        kv_set
    ),
    entry!(
        "kv.incr",
        "sip.kv.incr(key, [by], [ttl]) -> integer",
        ANY,
        Store,
        "Adds `by` (default 1) to an integer and returns the sum. A missing key starts at 0 and lives `ttl` seconds from then (a fixed window); an existing key keeps its expiry.",
        kv_incr
    ),
    entry!(
        "kv.delete",
        "sip.kv.delete(key) -> boolean",
        ANY,
        Store,
        "Removes a key; whether it was there.",
        kv_delete
    ),
    entry!(
        "log.info",
        "sip.log.info(message, [fields])",
        ANY,
        Log,
        "A log line (target `sipreg::script`) with the script, the hook and `fields` written as `key=\"value\"`, sorted by key.",
        |lua, args| log_line(lua, tracing::Level::INFO, args)
    ),
    entry!(
        "log.warn",
        "sip.log.warn(message, [fields])",
        ANY,
        Log,
        "As `sip.log.info`, at warning level.",
        |lua, args| log_line(lua, tracing::Level::WARN, args)
    ),
    entry!(
        "log.error",
        "sip.log.error(message, [fields])",
        ANY,
        Log,
        "As `sip.log.info`, at error level.",
        |lua, args| log_line(lua, tracing::Level::ERROR, args)
    ),
    entry!(
        "log.debug",
        "sip.log.debug(message, [fields])",
        ANY,
        Log,
        "As `sip.log.info`, at debug level.",
        |lua, args| log_line(lua, tracing::Level::DEBUG, args)
    ),
    entry!(
        "cache.get",
        "sip.cache.get(key) -> value | nil",
        ANY,
        Store,
        "A value of this script's own cache, in this server's memory (every state of the script shares it; other scripts and nodes do not), until its TTL passes; nil once it did or when it was never set. Meant for answers of outside services: cache a user's credentials for `ttl` seconds, and `false` for a user the service does not know, for a shorter one.",
        super::cache::get
    ),
    entry!(
        "cache.set",
        "sip.cache.set(key, value, ttl)",
        ANY,
        Store,
        "Caches a string, number or boolean for `ttl` seconds (required, > 0); `nil` removes the key. Keys are at most 1 KiB, strings 64 KiB. The cache holds at most `cache_max_entries` entries (the `[[hooks]]` entry; default 10000): a full cache drops the expired entries, then the one that expires soonest. A reload of the script empties it.",
        super::cache::set
    ),
    entry!(
        "json.encode",
        "sip.json.encode(value) -> string",
        ANY,
        Data,
        "JSON text of a value: a table whose keys are exactly 1..n is an array, any other table an object (string or integer keys; an empty table is `{}`), nil is `null`. A function, a NaN or infinity, text that is not UTF-8, or nesting over 64 deep (a table that holds itself) raises an error naming where. Each value costs one unit of the instruction budget.",
        super::json::encode
    ),
    entry!(
        "json.decode",
        "sip.json.decode(text) -> value",
        ANY,
        Data,
        "The value of JSON text: objects and arrays become tables (arrays from 1), `null` becomes nil (so a key whose value is null is absent), integers stay integers. Text that is not JSON, or nesting over 64 deep, raises an error with the position. Each value costs one unit of the instruction budget.",
        super::json::decode
    ),
    entry!(
        "http.request",
        "sip.http.request{method, url, headers, body, timeout_ms} -> {status, headers, body}",
        REQUEST,
        Outside,
        "An HTTP or HTTPS request to a URL under one of the entry's `allow_http` prefixes (any other raises, and so does a redirect outside them). `method` defaults to GET, `timeout_ms` to 1000 (the request's `[server] wait_deadline_ms` bounds it too); `headers` is a table of names to values. Written as a plain call: the request the hook serves is parked while the answer is on its way, and the time waited counts against neither the instruction budget nor `time_limit_ms`. Returns the status, the headers (lower-case names) and the body, with two methods: `answer:json()` decodes the body (as `sip.json.decode`) and `answer:outage(why)` raises an outage of this service (an answer that lacks what the script needs). A timeout, a refused connection, an answer over 1 MiB, a 5xx (unless `accept_5xx = true`) and a body `json()` cannot read raise an outage: the request gets what the entry's `on_outage` says (503 with Retry-After by default, never a 200), the outage is logged once with the service's address and counted per service in `/metrics` (`pcall` catches it like any error). Raises inside one of the script's coroutines. Connections are pooled, at most `http_max_connections` (the entry's; default 32) to one destination at once.",
        http
    ),
    entry!(
        "http.get",
        "sip.http.get(url, [options]) -> {status, headers, body}",
        REQUEST,
        Outside,
        "`sip.http.request` with method GET; `options` holds `headers` and `timeout_ms`.",
        http
    ),
    entry!(
        "http.post",
        "sip.http.post(url, body, [options]) -> {status, headers, body}",
        REQUEST,
        Outside,
        "`sip.http.request` with method POST and this body; `options` holds `headers` and `timeout_ms`.",
        http
    ),
    entry!(
        "config",
        "sip.config() -> table",
        ANY,
        Script,
        "The `config` table of the script's `[[hooks]]` entry (empty when there is none).",
        |lua, _| ret(lua, lua.named_registry_value::<Table>("sipreg.config")?)
    ),
    entry!(
        "read_file",
        "sip.read_file(path) -> string | nil, error",
        LOAD,
        Script,
        "The text of a file, while the script loads. A relative path starts at the configuration file's folder. Only files in the script's own folder, and files its `config` table names (any string value, as a path from the configuration's folder), can be read; any other path returns nil and the reason. The file is watched: when it changes (or appears, or goes), the script is reloaded, and so reads it again.",
        read_file
    ),
];

fn check(lua: &Lua, e: &Entry) -> mlua::Result<()> {
    let phase = lua
        .app_data_ref::<CallData>()
        .map_or(Phase::Load, |c| c.phase);
    if e.phases & phase.bit() != 0 {
        return Ok(());
    }
    let now = if phase == Phase::Load {
        "while the script loads".to_owned()
    } else {
        format!("from {}", phase.name())
    };
    Err(err(format!(
        "sip.{} may be called from {}; not {now}",
        e.name,
        hook_names(e.phases)
    )))
}

/// Builds the `sip` global from the registry (`decisions` holds the Lua entries) and
/// freezes it.
pub(crate) fn install(
    lua: &Lua,
    freeze: &Function,
    in_coroutine: &Function,
    decisions: &Table,
) -> mlua::Result<()> {
    let sip = lua.create_table()?;
    let http = super::http::functions(lua, in_coroutine)?;
    let mut subtables: Vec<(&str, Table)> = Vec::new();
    for e in REGISTRY {
        let (table, key) = match e.name.split_once('.') {
            Some((sub, key)) => {
                let t = match subtables.iter().find(|(n, _)| *n == sub) {
                    Some((_, t)) => t.clone(),
                    None => {
                        let t = lua.create_table()?;
                        sip.raw_set(sub, &t)?;
                        subtables.push((sub, t.clone()));
                        t
                    }
                };
                (t, key)
            }
            None => (sip.clone(), e.name),
        };
        match e.imp {
            Imp::Lua => {
                let v: Value = decisions.raw_get(e.name)?;
                if v.is_nil() {
                    return Err(err(format!("decisions.lua lacks {}", e.name)));
                }
                table.raw_set(key, v)?;
            }
            Imp::Http => {
                let f: Function = http.raw_get(key)?;
                table.raw_set(key, f)?;
            }
            Imp::Rust(imp) => {
                let f = lua.create_function(move |lua, args: MultiValue| {
                    let _uncapped = super::limits::Uncapped::new(lua);
                    check(lua, e)?;
                    imp(lua, args)
                })?;
                table.raw_set(key, f)?;
            }
        }
    }
    for (name, t) in &subtables {
        freeze.call::<()>((t, format!("sip.{name}")))?;
    }
    freeze.call::<()>((&sip, "sip"))?;
    lua.globals().raw_set("sip", sip)?;
    Ok(())
}

/// `docs/lua-api.md`, from the registry.
pub fn markdown() -> String {
    let mut out = String::from(include_str!("api_intro.md"));
    for section in Section::ALL {
        out.push_str(&format!("\n## {}\n\n", section.title()));
        let column = if section == Section::Decision {
            "may be returned from"
        } else {
            "may be called from"
        };
        out.push_str(&format!(
            "| syntax | {column} | what it does |\n|---|---|---|\n"
        ));
        for e in REGISTRY.iter().filter(|e| e.section == section) {
            let phases = if e.phases == ANY {
                "anywhere".to_owned()
            } else {
                hook_names(e.phases)
            };
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                e.syntax.replace('|', "\\|"),
                phases,
                e.doc.replace('|', "\\|")
            ));
        }
    }
    out
}
