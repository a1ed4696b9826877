//! The certificate authorities trusted for IMAP and SMTP: the public ones (webpki roots), plus
//! those of a PEM file the admin names (`imap.ca_file`, `smtp.ca_file`) for a server whose
//! certificate a company CA issued, or a self-signed one.

use std::path::Path;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;

/// Every certificate in a PEM file; an error names the file and what is wrong with it.
pub(crate) fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not a PEM certificate file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate (expected -----BEGIN CERTIFICATE-----)", path.display()));
    }
    Ok(certs)
}

/// A root store with the public roots and those of `ca_file`.
pub(crate) fn roots(ca_file: Option<&Path>) -> Result<tokio_rustls::rustls::RootCertStore, String> {
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        for cert in load_ca_file(path)? {
            roots.add(cert).map_err(|e| format!("{}: a certificate is not usable as a CA: {e}", path.display()))?;
        }
    }
    Ok(roots)
}

/// What to change when a TLS error says the server's certificate was refused; `section` is
/// `imap` or `smtp`. `None` for other errors.
pub(crate) fn certificate_hint(message: &str, section: &str) -> Option<String> {
    let m = message.to_ascii_lowercase();
    if m.contains("unknownissuer") || m.contains("unknown issuer") {
        Some(format!(
            "the server's certificate is not trusted; if your own CA issued it or it is self-signed, set {section}.ca_file to that CA's PEM file"
        ))
    } else if m.contains("not valid for name") {
        Some(format!("set {section}.host to a name the server's certificate is valid for"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        assert!(load_ca_file(&missing).unwrap_err().contains("nope.pem"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "just text\n").unwrap();
        assert!(load_ca_file(&empty).unwrap_err().contains("holds no certificate"));
        let broken = dir.path().join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n").unwrap();
        assert!(
            load_ca_file(&broken).unwrap_err().contains("not a PEM certificate file"),
            "{:?}",
            load_ca_file(&broken)
        );
    }

    #[test]
    fn hints_follow_the_kind_of_certificate_error() {
        let unknown = certificate_hint("invalid peer certificate: UnknownIssuer", "imap").unwrap();
        assert!(unknown.contains("imap.ca_file"), "{unknown}");
        let name = certificate_hint("certificate not valid for name \"10.0.0.1\"", "smtp").unwrap();
        assert!(name.contains("smtp.host"), "{name}");
        assert!(certificate_hint("connection refused", "imap").is_none());
    }
}
