//! The server side of TLS: the certificates of `[tls]` chosen by the name a client asks
//! for (SNI), client certificates verified against `ca` as `verify_client` says, and the
//! whole configuration rebuilt when a file changes (or on SIGHUP): a pair that fails to
//! load is refused with a log line and the previous one keeps serving. Connections open
//! keep the configuration they started with.

use super::material::{self, Identity, Which};
use crate::config::{Tls, VerifyClient};
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Days before a certificate's end that its loading warns of it.
const WARN_DAYS: i64 = 14;

/// The TLS server configuration in force, and how to build it again.
#[derive(Debug)]
pub struct ServerTls {
    current: ArcSwap<rustls::ServerConfig>,
    settings: Tls,
    base_dir: PathBuf,
    /// Each file's modification time and length when it was last read.
    stamps: Mutex<Vec<Stamp>>,
}

/// A file, with its modification time and length if it could be read.
type Stamp = (PathBuf, Option<(SystemTime, u64)>);

/// A configuration built, with what its loading warns of (a certificate past or near
/// its end).
#[derive(Debug)]
pub struct Built {
    pub config: rustls::ServerConfig,
    pub warnings: Vec<String>,
}

impl ServerTls {
    /// Loads `[tls]` (paths relative to `base_dir`).
    ///
    /// # Errors
    /// Every file that cannot be used, each message naming the file, the line and the
    /// key of the configuration that names it.
    pub fn load(settings: &Tls, base_dir: &Path) -> Result<(ServerTls, Vec<String>), Vec<String>> {
        let built = build(settings, base_dir, now_secs())?;
        let tls = ServerTls {
            current: ArcSwap::from_pointee(built.config),
            settings: settings.clone(),
            base_dir: base_dir.to_owned(),
            stamps: Mutex::new(stamps(settings, base_dir)),
        };
        Ok((tls, built.warnings))
    }

    /// The configuration new connections get.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        self.current.load_full()
    }

    /// Whether a file changed since it was last read.
    pub fn changed(&self) -> bool {
        *self.stamps.lock() != stamps(&self.settings, &self.base_dir)
    }

    /// Reads every file again and, if all load, serves the new configuration.
    ///
    /// # Errors
    /// What failed; the previous configuration keeps serving.
    pub fn reload(&self) -> Result<Vec<String>, Vec<String>> {
        let now = stamps(&self.settings, &self.base_dir);
        // Read as changed even when refused: a refused pair is not retried every second,
        // only when a file changes again.
        *self.stamps.lock() = now;
        let built = build(&self.settings, &self.base_dir, now_secs())?;
        self.current.store(Arc::new(built.config));
        Ok(built.warnings)
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The files of `[tls]`, resolved.
fn files(settings: &Tls, base_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![base_dir.join(&settings.cert), base_dir.join(&settings.key)];
    out.extend(settings.ca.iter().map(|c| base_dir.join(c)));
    for c in &settings.certificates {
        out.push(base_dir.join(&c.cert));
        out.push(base_dir.join(&c.key));
    }
    out
}

fn stamps(settings: &Tls, base_dir: &Path) -> Vec<Stamp> {
    files(settings, base_dir)
        .into_iter()
        .map(|p| {
            let stamp = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (p, stamp)
        })
        .collect()
}

/// `origin: message`, or the message alone where the configuration was not read from a
/// file.
fn at(origin: &str, message: &str) -> String {
    if origin.is_empty() {
        message.to_owned()
    } else {
        format!("{origin}: {message}")
    }
}

/// Builds the server configuration `[tls]` describes, at `now` (seconds).
///
/// # Errors
/// Every problem found, each naming file, line and key.
pub fn build(settings: &Tls, base_dir: &Path, now: i64) -> Result<Built, Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let o = &settings.origins;
    let mut pairs = vec![(&settings.cert, &settings.key, o.cert.clone(), o.key.clone())];
    for (i, c) in settings.certificates.iter().enumerate() {
        let (oc, ok) = o.certificates.get(i).cloned().unwrap_or_default();
        pairs.push((&c.cert, &c.key, oc, ok));
    }
    let mut identities = Vec::new();
    for (cert, key, cert_origin, key_origin) in pairs {
        match material::load(&base_dir.join(cert), &base_dir.join(key)) {
            Ok(id) => {
                if let Some(w) = expiry_warning(&id, now) {
                    warnings.push(at(&cert_origin, &w));
                }
                identities.push(id);
            }
            Err((Which::Cert, e)) => errors.push(at(&cert_origin, &e)),
            Err((Which::Key, e)) => errors.push(at(&key_origin, &e)),
        }
    }
    let verifier = match (settings.verify_client, &settings.ca) {
        (VerifyClient::Off, _) | (_, None) => None,
        (mode, Some(ca)) => match roots(&base_dir.join(ca)) {
            Ok(roots) => {
                let b =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::provider());
                let b = if mode == VerifyClient::Optional {
                    b.allow_unauthenticated()
                } else {
                    b
                };
                match b.build() {
                    Ok(v) => Some(v),
                    Err(e) => {
                        errors.push(at(&o.ca, &format!("cannot verify clients: {e}")));
                        None
                    }
                }
            }
            Err(e) => {
                errors.push(at(&o.ca, &e));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let builder = rustls::ServerConfig::builder_with_provider(super::provider())
        .with_protocol_versions(super::VERSIONS)
        .map_err(|e| vec![format!("TLS versions: {e}")])?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_cert_resolver(Arc::new(Sni { identities }));
    Ok(Built { config, warnings })
}

/// The trust anchors of a PEM file.
///
/// # Errors
/// The file cannot be read, holds no certificate, or one that is no anchor.
pub fn roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in material::read_certs(path)? {
        roots
            .add(c)
            .map_err(|e| format!("{}: not a usable trust anchor: {e}", path.display()))?;
    }
    Ok(roots)
}

/// A warning for a certificate past its end or within [`WARN_DAYS`] of it.
fn expiry_warning(id: &Identity, now: i64) -> Option<String> {
    let date = time::OffsetDateTime::from_unix_timestamp(id.not_after)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| id.not_after.to_string());
    if id.not_after < now {
        Some(format!(
            "the certificate expired on {date}: clients that check it refuse the connection"
        ))
    } else if id.not_after < now + WARN_DAYS * 86_400 {
        Some(format!("the certificate expires on {date}"))
    } else {
        None
    }
}

/// Picks the certificate whose names cover the name the client asked for; the first
/// (`[tls] cert`) otherwise.
#[derive(Debug)]
struct Sni {
    identities: Vec<Identity>,
}

impl ResolvesServerCert for Sni {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let chosen = hello.server_name().and_then(|name| {
            self.identities
                .iter()
                .find(|id| id.names.iter().any(|n| material::name_covers(n, name)))
        });
        chosen.or(self.identities.first()).map(|id| id.key.clone())
    }
}
