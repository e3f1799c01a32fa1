//! Safe views of what the host hands a plugin: a request, an authentication question, the
//! bindings of `bind`, an expired binding.

use crate::ffi::{AuthC, BindC, BindingC, ExpireC, RStr, RequestC, TransportC};

/// A transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub(crate) fn from_c(t: TransportC) -> Transport {
        match t {
            TransportC::Udp => Transport::Udp,
            TransportC::Tcp => Transport::Tcp,
        }
    }

    /// `udp` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
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
        Request {
            head: text(r.head).unwrap_or(""),
            source_ip: text(r.source_ip).unwrap_or(""),
            source_port: r.source_port,
            transport: Transport::from_c(r.transport),
            now_ms: r.now_ms,
        }
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

/// What `bind` is asked about.
#[derive(Debug)]
pub struct Bind<'a> {
    pub aor: &'a str,
    /// The authenticated user, `None` when authentication is off.
    pub identity: Option<&'a str>,
    pub kind: BindKind,
    pub bindings: Vec<Binding<'a>>,
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
        }
    }
}

/// Why a binding went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireReason {
    Expired,
    Unregistered,
    Evicted,
    /// It stopped answering OPTIONS.
    Unreachable,
    /// An operator removed it through the admin API.
    Administrative,
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
            transport: Transport::from_c(e.transport),
            reason: match e.reason {
                1 => ExpireReason::Unregistered,
                2 => ExpireReason::Evicted,
                3 => ExpireReason::Unreachable,
                4 => ExpireReason::Administrative,
                _ => ExpireReason::Expired,
            },
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
