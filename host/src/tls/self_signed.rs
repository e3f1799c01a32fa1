//! A self-signed certificate and its key, for trying TLS and WSS without a CA
//! (`sipreg cert --self-signed`). Clients must be told to trust it.

use std::path::Path;

/// How long the certificate is valid, in days.
const DAYS: i64 = 365;

/// Writes a certificate for these host names (or IP addresses) to `cert_path` and its key
/// to `key_path` (readable by its owner only), making their folders.
///
/// # Errors
/// A name rcgen refuses, or a file that cannot be written.
pub fn write(hosts: &[String], cert_path: &Path, key_path: &Path) -> Result<(), String> {
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())
        .map_err(|e| format!("cannot make a certificate for {hosts:?}: {e}"))?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(DAYS);
    let mut name = rcgen::DistinguishedName::new();
    name.push(
        rcgen::DnType::CommonName,
        hosts.first().map_or("sipreg", String::as_str),
    );
    name.push(rcgen::DnType::OrganizationName, "sipreg self-signed");
    params.distinguished_name = name;
    let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the certificate: {e}"))?;
    for dir in [cert_path.parent(), key_path.parent()]
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(cert_path, cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    write_private(key_path, key.serialize_pem().as_bytes())
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
