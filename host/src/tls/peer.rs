//! What the registrar learns of a client's verified certificate (mutual TLS): its
//! subject and its subject alternative names, for hooks to tie an alias to a certificate.

use rustls::pki_types::CertificateDer;
use std::net::IpAddr;

/// A verified client certificate, as hooks see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerCert {
    /// The subject's distinguished name, as RFC 4514 writes it (`CN=alice,O=Example`).
    pub subject: String,
    /// The subject alternative names, each with its kind: `DNS:host`, `URI:sip:alice@example.com`,
    /// `email:alice@example.com`, `IP:192.0.2.1`.
    pub sans: Vec<String>,
}

impl PeerCert {
    /// What the end-entity certificate says, if it parses.
    pub fn of(cert: &CertificateDer<'_>) -> Option<PeerCert> {
        use x509_parser::extensions::GeneralName;
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).ok()?;
        let mut sans = Vec::new();
        if let Ok(Some(san)) = parsed.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => sans.push(format!("DNS:{d}")),
                    GeneralName::URI(u) => sans.push(format!("URI:{u}")),
                    GeneralName::RFC822Name(m) => sans.push(format!("email:{m}")),
                    GeneralName::IPAddress(b) => {
                        if let Some(ip) = ip_of(b) {
                            sans.push(format!("IP:{ip}"));
                        }
                    }
                    _ => {}
                }
            }
        }
        Some(PeerCert {
            subject: rfc4514(&parsed),
            sans,
        })
    }

    /// The names `sip:` URIs and hosts of the certificate (RFC 5922 section 7.1: the
    /// URI SANs, then the DNS SANs; the subject's CN only when there is neither).
    pub fn identities(&self) -> impl Iterator<Item = &str> {
        self.sans.iter().filter_map(|s| {
            s.strip_prefix("URI:")
                .or_else(|| s.strip_prefix("DNS:"))
                .or_else(|| s.strip_prefix("email:"))
        })
    }
}

/// The subject as `CN=alice,O=Example` (most significant last, as RFC 4514 orders it).
fn rfc4514(cert: &x509_parser::certificate::X509Certificate<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for rdn in cert.subject().iter() {
        for attr in rdn.iter() {
            let name = x509_parser::objects::oid2abbrev(
                attr.attr_type(),
                x509_parser::objects::oid_registry(),
            )
            .map_or_else(|_| attr.attr_type().to_id_string(), str::to_owned);
            let value = attr.as_str().unwrap_or("");
            parts.push(format!("{name}={}", escape(value)));
        }
    }
    parts.reverse();
    parts.join(",")
}

/// RFC 4514 section 2.4's escapes.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let edge = i == 0 && (c == ' ' || c == '#') || i == last && c == ' ';
        if edge || matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// An IP address SAN's bytes.
pub(crate) fn ip_of(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}
