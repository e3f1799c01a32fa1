//! The in-process harness: a core from TOML text, requests built as text, replies read back
//! (and cross-checked with rsip, a parser we did not write).

use sipreg::config::{self, Transport};
use sipreg::core::Core;
use sipreg::hooks::Hooks;
use std::net::SocketAddr;
use std::sync::Arc;

pub const T0: u64 = 1_800_000_000_000;

/// A core at a controllable time.
pub struct Harness {
    pub core: Core,
    pub now: u64,
    pub source: SocketAddr,
    pub transport: Transport,
}

impl Harness {
    pub fn new(toml: &str) -> Harness {
        Harness::with_hooks(toml, Vec::new())
    }

    pub fn with_hooks(toml: &str, hooks: Vec<Arc<dyn Hooks>>) -> Harness {
        let cfg = config::parse(toml, "test.toml").unwrap_or_else(|e| panic!("{e}"));
        Harness {
            core: Core::new(&cfg, hooks),
            now: T0,
            source: "192.0.2.10:5060".parse().unwrap(),
            transport: Transport::Udp,
        }
    }

    /// Sends raw bytes; the reply, if any.
    pub fn send_raw(&self, bytes: &[u8]) -> Option<Reply> {
        let mut out = Vec::new();
        self.core
            .handle(bytes, self.source, self.transport, self.now, &mut out);
        (!out.is_empty()).then(|| Reply::parse(&out))
    }

    pub fn send(&self, req: &str) -> Reply {
        self.send_raw(req.as_bytes()).expect("a reply")
    }
}

/// A reply, read back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Reply {
    pub fn parse(bytes: &[u8]) -> Reply {
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 reply");
        assert!(text.ends_with("\r\n\r\n"), "reply not terminated: {text}");
        // rsip, an independent parser, must read every reply we write.
        match rsip::SipMessage::try_from(text.as_str()) {
            Ok(rsip::SipMessage::Response(_)) => {}
            other => panic!("rsip cannot read our reply ({other:?}):\n{text}"),
        }
        let mut lines = text.split("\r\n");
        let status = lines.next().unwrap();
        let mut parts = status.splitn(3, ' ');
        assert_eq!(parts.next(), Some("SIP/2.0"));
        let code = parts.next().unwrap().parse().unwrap();
        let reason = parts.next().unwrap_or("").to_owned();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        Reply {
            code,
            reason,
            headers,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `expires` of each Contact of a 200, by contact URI.
    pub fn contact_expires(&self) -> Vec<(String, u32)> {
        self.all("Contact")
            .iter()
            .map(|c| {
                let uri = c[c.find('<').unwrap() + 1..c.find('>').unwrap()].to_owned();
                let exp = c
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("expires="))
                    .expect("expires param")
                    .parse()
                    .unwrap();
                (uri, exp)
            })
            .collect()
    }
}

/// A REGISTER, built field by field.
#[derive(Debug, Clone)]
pub struct Register {
    pub ruri: String,
    pub aor: String,
    pub call_id: String,
    pub cseq: u32,
    pub branch: String,
    pub contacts: Vec<String>,
    pub expires: Option<String>,
    pub extra: Vec<String>,
}

impl Register {
    pub fn new(aor: &str) -> Register {
        let domain = aor.split('@').nth(1).unwrap_or("example.com");
        Register {
            ruri: format!("sip:{domain}"),
            aor: aor.to_owned(),
            call_id: format!("cid-{aor}"),
            cseq: 1,
            branch: "z9hG4bK-1".to_owned(),
            contacts: Vec::new(),
            expires: None,
            extra: Vec::new(),
        }
    }

    pub fn contact(mut self, c: &str) -> Register {
        self.contacts.push(c.to_owned());
        self
    }

    pub fn expires(mut self, e: &str) -> Register {
        self.expires = Some(e.to_owned());
        self
    }

    pub fn cseq(mut self, n: u32) -> Register {
        self.cseq = n;
        self.branch = format!("z9hG4bK-{n}");
        self
    }

    pub fn call_id(mut self, c: &str) -> Register {
        self.call_id = c.to_owned();
        self
    }

    pub fn header(mut self, h: &str) -> Register {
        self.extra.push(h.to_owned());
        self
    }

    pub fn text(&self) -> String {
        let mut s = format!(
            "REGISTER {} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5060;rport;branch={}\r\nMax-Forwards: 70\r\nFrom: <sip:{}>;tag=ft1\r\nTo: <sip:{}>\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\n",
            self.ruri, self.branch, self.aor, self.aor, self.call_id, self.cseq
        );
        for c in &self.contacts {
            s.push_str(&format!("Contact: {c}\r\n"));
        }
        if let Some(e) = &self.expires {
            s.push_str(&format!("Expires: {e}\r\n"));
        }
        for h in &self.extra {
            s.push_str(h);
            s.push_str("\r\n");
        }
        s.push_str("Content-Length: 0\r\n\r\n");
        s
    }
}

/// A configuration with alice (UDP and TCP), bob (UDP only) and carol (HA1), on example.com.
pub fn config(challenge: &str, extra_registrar: &str) -> String {
    format!(
        r#"
[server]
listen = ["udp:127.0.0.1:0", "tcp:127.0.0.1:0"]
domains = ["example.com"]

[registrar]
default_expires = 3600
min_expires = 60
max_expires = 7200
max_contacts = 3
{extra_registrar}

[auth]
challenge = "{challenge}"
realm = "example.com"
algorithms = ["SHA-256", "MD5"]
nonce_ttl = 300

[[aliases]]
alias = "alice@example.com"
username = "alice"
password = "wonderland"
transports = ["udp", "tcp"]

[[aliases]]
alias = "bob@example.com"
username = "bob"
password = "builder"
transports = ["udp"]

[[aliases]]
alias = "carol@example.com"
username = "carol"
ha1 = "{carol_ha1}"
"#,
        carol_ha1 = md5_hex("carol:example.com:secret")
    )
}

pub fn md5_hex(s: &str) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(s.as_bytes()))
}

pub fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(s.as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The value of a `name="value"` or `name=value` parameter in a challenge.
pub fn challenge_param<'a>(challenge: &'a str, name: &str) -> Option<&'a str> {
    challenge
        .trim_start_matches("Digest ")
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

/// Our own digest client (RFC 7616, `qop=auth`): the Authorization value answering
/// `challenge` for `user`/`password`.
pub fn authorization(challenge: &str, user: &str, password: &str, uri: &str, nc: u32) -> String {
    let realm = challenge_param(challenge, "realm").unwrap();
    let nonce = challenge_param(challenge, "nonce").unwrap();
    let alg = challenge_param(challenge, "algorithm").unwrap_or("MD5");
    let h = |s: &str| {
        if alg == "SHA-256" {
            sha256_hex(s)
        } else {
            md5_hex(s)
        }
    };
    let ha1 = h(&format!("{user}:{realm}:{password}"));
    let ha2 = h(&format!("REGISTER:{uri}"));
    let cnonce = "0a4f113b";
    let nc = format!("{nc:08x}");
    let response = h(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        r#"Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", response="{response}", algorithm={alg}, cnonce="{cnonce}", qop=auth, nc={nc}"#
    )
}
