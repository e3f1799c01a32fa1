//! Reading certificates and keys from PEM files, checking that a key belongs to its
//! certificate, and what a certificate says of itself (its names, its end of validity).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::path::Path;
use std::sync::Arc;

/// A certificate chain with its key, ready to serve, and what the checks need of it.
#[derive(Debug, Clone)]
pub struct Identity {
    pub key: Arc<CertifiedKey>,
    /// The DNS names (and IP addresses) of its subject alternative names, lowercase.
    pub names: Vec<String>,
    /// The end of its validity, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Reads a PEM certificate chain.
///
/// # Errors
/// The file cannot be read, or holds no certificate.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{} is not PEM: {e:?}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Reads a certificate chain and its private key and checks that they belong together.
///
/// # Errors
/// Unreadable files, no certificate, no key, a key of another certificate; each message
/// names the file.
pub fn load(cert: &Path, key: &Path) -> Result<Identity, (Which, String)> {
    let chain = read_certs(cert).map_err(|e| (Which::Cert, e))?;
    let pem = std::fs::read(key)
        .map_err(|e| (Which::Key, format!("cannot read {}: {e}", key.display())))?;
    let der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        (
            Which::Key,
            format!("{} holds no private key: {e:?}", key.display()),
        )
    })?;
    let (names, not_after) = describe(&chain[0]).map_err(|e| (Which::Cert, e))?;
    let certified = CertifiedKey::from_der(chain, der, &super::provider()).map_err(|e| {
        let why = match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "the key in {} is not the key of the certificate in {}",
                key.display(),
                cert.display()
            ),
            other => format!("{} cannot be used: {other}", key.display()),
        };
        (Which::Key, why)
    })?;
    Ok(Identity {
        key: Arc::new(certified),
        names,
        not_after,
    })
}

/// Which of the two files a loading error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Cert,
    Key,
}

/// A certificate's subject alternative names (DNS and IP, lowercase) and its end of
/// validity.
fn describe(cert: &CertificateDer<'_>) -> Result<(Vec<String>, i64), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => {
                    names.push(d.to_ascii_lowercase());
                }
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    if let Some(ip) = super::peer::ip_of(b) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    Ok((names, parsed.validity().not_after.timestamp()))
}

/// Whether a certificate name (`sip.example.com`, `*.example.com`) covers `host`
/// (RFC 6125 section 6.4.3: a wildcard stands for one whole left-most label).
pub fn name_covers(name: &str, host: &str) -> bool {
    if name.eq_ignore_ascii_case(host) {
        return true;
    }
    match name.strip_prefix("*.") {
        Some(rest) => host
            .split_once('.')
            .is_some_and(|(label, tail)| !label.is_empty() && tail.eq_ignore_ascii_case(rest)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_covers("sip.example.com", "SIP.example.com"));
        assert!(name_covers("*.example.com", "sip.example.com"));
        assert!(!name_covers("*.example.com", "a.sip.example.com"));
        assert!(!name_covers("*.example.com", "example.com"));
        assert!(!name_covers("sip.example.com", "sip.example.org"));
    }

    #[test]
    fn a_pair_that_does_not_match_is_refused_naming_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let pair = |stem: &str| {
            let cert = dir.path().join(format!("{stem}.pem"));
            let key = dir.path().join(format!("{stem}.key"));
            let host = format!("{stem}.example.com");
            super::super::self_signed::write(&[host], &cert, &key).unwrap();
            (cert, key)
        };
        let (a, b) = (pair("a"), pair("b"));
        let ok = load(&a.0, &a.1).unwrap();
        assert_eq!(ok.names, ["a.example.com"]);
        assert!(ok.not_after > 1_700_000_000);
        let (which, e) = load(&a.0, &b.1).unwrap_err();
        assert_eq!(which, Which::Key);
        assert!(e.contains("a.key") || e.contains("b.key"), "{e}");
        assert!(e.contains("is not the key of the certificate"), "{e}");
        let (which, e) = load(&dir.path().join("none.pem"), &a.1).unwrap_err();
        assert_eq!(which, Which::Cert);
        assert!(e.contains("cannot read") && e.contains("none.pem"), "{e}");
        let (which, e) = load(&a.1, &a.1).unwrap_err();
        assert_eq!(which, Which::Cert);
        assert!(e.contains("holds no certificate"), "{e}");
    }
}
