//! Safe views of what the host hands a plugin: a request, an authentication question, the
//! bindings of `bind`, an expired binding.

use crate::Limits;
use crate::ffi::{AuthC, BindC, BindingC, ExpireC, RStr, RequestC, TransportC};

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    /// The transport of a request or binding: its name where the host passes one (hosts
    /// after c01b7a9), else the older two-valued kind.
    pub(crate) fn from_c(t: TransportC, name: Option<RStr>) -> Transport {
        let named = name.and_then(text).and_then(|n| match n {
            "udp" => Some(Transport::Udp),
            "tcp" => Some(Transport::Tcp),
            "tls" => Some(Transport::Tls),
            "ws" => Some(Transport::Ws),
            "wss" => Some(Transport::Wss),
            _ => None,
        });
        named.unwrap_or(match t {
            TransportC::Udp => Transport::Udp,
            TransportC::Tcp => Transport::Tcp,
        })
    }

    /// `udp`, `tcp`, `tls`, `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
}

/// A client's verified certificate (TLS, WSS with `[tls] verify_client`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCert<'a> {
    /// The subject, as RFC 4514 writes it (`CN=alice,O=Example`).
    pub subject: &'a str,
    sans: &'a str,
}

impl<'a> ClientCert<'a> {
    /// The subject alternative names, each with its kind (`URI:sip:alice@example.com`,
    /// `DNS:phone.example.com`, `email:alice@example.com`, `IP:192.0.2.1`).
    pub fn sans(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.sans.lines().filter(|l| !l.is_empty())
    }
}

/// The sizes of the structures the host passes (0 until a plugin is created).
pub(crate) static REQUEST_SIZE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);
pub(crate) static EXPIRE_SIZE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(0);

/// Whether the host's structures of `size` bytes hold the field at `end` (its offset
/// plus its size).
fn covers(size: &std::sync::atomic::AtomicUsize, end: usize) -> bool {
    size.load(std::sync::atomic::Ordering::Relaxed) >= end
}

/// Reads a host string that the host keeps valid during the call.
pub(crate) fn text<'a>(s: RStr) -> Option<&'a str> {
    // SAFETY: every RStr the host passes points to bytes it keeps alive for the call,
    // and the views built from them do not outlive the call ('a is the call's).
    unsafe { s.get() }
}

/// The request a hook is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    head: &'a str,
    source_ip: &'a str,
    source_port: u16,
    transport: Transport,
    now_ms: u64,
    client_cert: Option<ClientCert<'a>>,
}

/// Compact forms of header names (RFC 3261 section 7.3.3 and extensions).
const COMPACT: &[(&str, &str)] = &[
    ("i", "call-id"),
    ("m", "contact"),
    ("e", "content-encoding"),
    ("l", "content-length"),
    ("c", "content-type"),
    ("f", "from"),
    ("s", "subject"),
    ("k", "supported"),
    ("t", "to"),
    ("v", "via"),
];

fn canonical(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    COMPACT
        .iter()
        .find(|(short, _)| *short == lower)
        .map_or(lower, |(_, long)| (*long).to_owned())
}

impl<'a> Request<'a> {
    pub(crate) fn from_c(r: &RequestC) -> Request<'a> {
        let newer = covers(&REQUEST_SIZE, std::mem::size_of::<RequestC>());
        let client_cert = if newer {
            text(r.tls_subject).map(|subject| ClientCert {
                subject,
                sans: text(r.tls_sans).unwrap_or(""),
            })
        } else {
            None
        };
        Request {
            head: text(r.head).unwrap_or(""),
            source_ip: text(r.source_ip).unwrap_or(""),
            source_port: r.source_port,
            transport: Transport::from_c(r.transport, newer.then_some(r.transport_name)),
            now_ms: r.now_ms,
            client_cert,
        }
    }

    /// The client's verified certificate, on a TLS or WSS connection that showed one.
    pub fn client_cert(&self) -> Option<ClientCert<'a>> {
        self.client_cert
    }

    /// The start line and headers as received (CRLF line ends, folded lines joined).
    pub fn head(&self) -> &'a str {
        self.head
    }

    /// The method.
    pub fn method(&self) -> &'a str {
        self.head.split(' ').next().unwrap_or("")
    }

    /// The Request-URI.
    pub fn request_uri(&self) -> &'a str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// The values of every header called `name` (any case, compact forms included).
    pub fn headers(&self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let wanted = canonical(name);
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(move |(n, _)| canonical(n) == wanted)
            .map(|(_, v)| v.trim())
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers(name).next()
    }

    /// The route set: every Route value, one per URI, in order.
    pub fn route_set(&self) -> Vec<&'a str> {
        self.headers("Route").flat_map(split_list).collect()
    }

    /// The packet's source address and port.
    pub fn source(&self) -> (&'a str, u16) {
        (self.source_ip, self.source_port)
    }

    /// The transport.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// When the request arrived, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }
}

/// What `authenticate` is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Auth<'a> {
    /// The address-of-record of To (`user@domain`, domain in lower case).
    pub aor: &'a str,
    /// The digest user name the request carries for the realm.
    pub username: Option<&'a str>,
    pub realm: &'a str,
}

impl Auth<'_> {
    pub(crate) fn from_c<'a>(a: &AuthC) -> Auth<'a> {
        Auth {
            aor: text(a.aor).unwrap_or(""),
            username: text(a.username),
            realm: text(a.realm).unwrap_or(""),
        }
    }
}

/// One binding `bind` is asked about.
#[derive(Debug)]
pub struct Binding<'a> {
    raw: &'a mut BindingC,
}

impl Binding<'_> {
    /// The Contact value as received.
    pub fn contact(&self) -> &str {
        text(self.raw.contact).unwrap_or("")
    }

    /// Seconds asked for (0 removes).
    pub fn expires(&self) -> u32 {
        self.raw.expires
    }

    /// Changes the seconds (the registrar still caps them at its maximum).
    pub fn set_expires(&mut self, seconds: u32) {
        self.raw.expires = seconds;
    }

    /// q in thousandths.
    pub fn q(&self) -> Option<u16> {
        u16::try_from(self.raw.q).ok()
    }

    /// Sets q in thousandths (at most 1000), or none.
    pub fn set_q(&mut self, q: Option<u16>) {
        self.raw.q = q.map_or(-1, |q| i32::from(q.min(1000)));
    }

    /// `+sip.instance`, unquoted.
    pub fn instance(&self) -> Option<&str> {
        text(self.raw.instance)
    }

    pub fn reg_id(&self) -> Option<&str> {
        text(self.raw.reg_id)
    }

    /// The binding's id (the one it has, or the one it will get).
    pub fn registration_id(&self) -> &str {
        text(self.raw.registration_id).unwrap_or("")
    }

    /// No such binding exists yet.
    pub fn is_new(&self) -> bool {
        self.raw.new
    }
}

/// What a REGISTER asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindKind {
    Update,
    Query,
    RemoveAll,
}

/// What `bind` is asked about, and what it may set beside its decision: the AOR's
/// limits and headers for the 200.
#[derive(Debug)]
pub struct Bind<'a> {
    pub aor: &'a str,
    /// The authenticated user, `None` when authentication is off.
    pub identity: Option<&'a str>,
    pub kind: BindKind,
    pub bindings: Vec<Binding<'a>>,
    limits: Limits,
    reply_headers: Vec<(String, String)>,
}

impl Bind<'_> {
    /// This AOR's limits over sipreg's configuration: set what this AOR needs of its own
    /// (`bind.limits_mut().max_contacts = Some(1)`).
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// The limits set so far.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds a header to the 200 (`Service-Route`, `P-Associated-URI`, ...). sipreg
    /// refuses (the request gets 500) a header it writes itself (Contact, Path, Expires,
    /// Date, Via, From, To, Call-ID, CSeq, Require, Supported, Min-Expires, the
    /// authentication's) and values with CR, LF or NUL.
    pub fn add_reply_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.reply_headers.push((name.into(), value.into()));
    }

    /// The headers added so far.
    pub fn reply_headers(&self) -> &[(String, String)] {
        &self.reply_headers
    }
}

impl Bind<'_> {
    /// # Safety
    /// `b.bindings` points to `b.count` bindings the host keeps valid and unaliased for
    /// the call.
    pub(crate) unsafe fn from_c<'a>(b: &'a mut BindC) -> Bind<'a> {
        let list: &'a mut [BindingC] = if b.bindings.is_null() || b.count == 0 {
            &mut []
        } else {
            // SAFETY: the caller promises `count` valid, exclusive bindings.
            unsafe { std::slice::from_raw_parts_mut(b.bindings, b.count) }
        };
        Bind {
            aor: text(b.aor).unwrap_or(""),
            identity: text(b.identity),
            kind: match b.kind {
                1 => BindKind::Query,
                2 => BindKind::RemoveAll,
                _ => BindKind::Update,
            },
            bindings: list.iter_mut().map(|raw| Binding { raw }).collect(),
            limits: Limits::default(),
            reply_headers: Vec::new(),
        }
    }

    /// What the plugin set: the limits and the headers for the 200.
    pub(crate) fn into_settings(self) -> (Limits, Vec<(String, String)>) {
        (self.limits, self.reply_headers)
    }
}

/// Writes limits into the host's structure of `bind`.
pub(crate) fn write_limits(b: &mut BindC, l: Limits) {
    let or_unset = |v: Option<u32>| v.unwrap_or(crate::ffi::LIMIT_UNSET);
    b.max_contacts = or_unset(l.max_contacts);
    b.min_expires = or_unset(l.min_expires);
    b.max_expires = or_unset(l.max_expires);
    b.evict = l.evict.map_or(0, crate::Evict::code);
}

/// Why a binding went away (sipreg's own type too: one definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireReason {
    /// Its time ran out.
    Expired,
    /// The device removed it (expires 0, or `Contact: *`).
    Unregistered,
    /// A new binding took its place under `max_contacts`.
    Evicted,
    /// It stopped answering OPTIONS (`[qualify] remove_unreachable`).
    Unreachable,
    /// An operator removed it (admin API, `DELETE /api/registrations/{aor}`).
    Administrative,
}

impl ExpireReason {
    /// The reason as sipreg's admin log writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpireReason::Expired => "Registration expired",
            ExpireReason::Unregistered => "Registration removed by the device",
            ExpireReason::Evicted => "Evicted: max_contacts reached",
            ExpireReason::Unreachable => "Unreachable: no answer to OPTIONS",
            ExpireReason::Administrative => "Removed by the administrator",
        }
    }

    /// A short name: `expired`, `unregistered`, `evicted`, `unreachable`,
    /// `administrative` (Lua's `ctx.binding.reason`).
    pub fn token(self) -> &'static str {
        match self {
            ExpireReason::Expired => "expired",
            ExpireReason::Unregistered => "unregistered",
            ExpireReason::Evicted => "evicted",
            ExpireReason::Unreachable => "unreachable",
            ExpireReason::Administrative => "administrative",
        }
    }

    /// Its number in the C ABI (`ExpireC::reason`).
    pub fn code(self) -> u32 {
        match self {
            ExpireReason::Expired => 0,
            ExpireReason::Unregistered => 1,
            ExpireReason::Evicted => 2,
            ExpireReason::Unreachable => 3,
            ExpireReason::Administrative => 4,
        }
    }

    /// The reason of a C ABI number (one a newer host sends and this crate does not know
    /// reads as `Expired`).
    pub fn from_code(code: u32) -> ExpireReason {
        match code {
            1 => ExpireReason::Unregistered,
            2 => ExpireReason::Evicted,
            3 => ExpireReason::Unreachable,
            4 => ExpireReason::Administrative,
            _ => ExpireReason::Expired,
        }
    }
}

/// A binding that went away.
#[derive(Debug, Clone, Copy)]
pub struct Expire<'a> {
    pub aor: &'a str,
    pub contact: &'a str,
    pub registration_id: &'a str,
    pub instance: Option<&'a str>,
    pub reg_id: Option<&'a str>,
    /// `ip:port` of the REGISTER that last wrote it.
    pub source: &'a str,
    pub transport: Transport,
    pub reason: ExpireReason,
    pub natted: bool,
}

impl Expire<'_> {
    pub(crate) fn from_c<'a>(e: &ExpireC) -> Expire<'a> {
        Expire {
            aor: text(e.aor).unwrap_or(""),
            contact: text(e.binding.contact).unwrap_or(""),
            registration_id: text(e.binding.registration_id).unwrap_or(""),
            instance: text(e.binding.instance),
            reg_id: text(e.binding.reg_id),
            source: text(e.source).unwrap_or(""),
            transport: Transport::from_c(
                e.transport,
                covers(&EXPIRE_SIZE, std::mem::size_of::<ExpireC>()).then_some(e.transport_name),
            ),
            reason: ExpireReason::from_code(e.reason),
            natted: e.natted,
        }
    }
}

/// Splits a comma-separated header value, leaving commas inside quotes and angle
/// brackets alone.
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod list_tests {
    #[test]
    fn route_values_split_outside_brackets_and_quotes() {
        let v: Vec<&str> =
            super::split_list("<sip:a;lr>, \"x, y\" <sip:b?h=1,2>,<sip:c>").collect();
        assert_eq!(v, ["<sip:a;lr>", "\"x, y\" <sip:b?h=1,2>", "<sip:c>"]);
    }
}
