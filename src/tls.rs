//! HTTPS served directly: rustls with the certificate and key from `[tls]`, read again on
//! SIGHUP so that a renewed certificate needs no restart (a file that does not load leaves the
//! current certificate in use, and says why). And the client side shared by the directory and
//! presence connections: the system's trust store, or the CA a `ca_file` names.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// `[tls]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM: the certificate, then its intermediates.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Ask clients for a certificate (optional for them): partners whose certificate is pinned
    /// (`partner add --certificate`) must present it with their key. Browsers may then offer
    /// one of theirs, which the console ignores.
    #[serde(default)]
    pub client_certificates: bool,
}

/// The certificate in use, swappable while connections are served.
pub struct Certificates {
    config: TlsConfig,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl Certificates {
    pub fn load(config: &TlsConfig) -> Result<Arc<Certificates>> {
        Ok(Arc::new(Certificates {
            current: RwLock::new(Arc::new(server_config(config)?)),
            config: config.clone(),
        }))
    }

    /// Reads the files again; on failure the current certificate stays.
    pub fn reload(&self) -> Result<()> {
        let fresh = Arc::new(server_config(&self.config)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// An acceptor with the certificate in use now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Reloads on every SIGHUP until `stop`.
    pub fn reload_on_sighup(
        self: Arc<Self>,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut hangups = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; certificates load at start only");
                    return;
                }
            };
            loop {
                tokio::select! {
                    _ = hangups.recv() => match self.reload() {
                        Ok(()) => tracing::info!(cert = %self.config.cert_file.display(), "certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "certificate not reloaded; the previous one stays in use"),
                    },
                    _ = crate::presence::stopped(&mut stop) => return,
                }
            }
        })
    }
}

fn server_config(config: &TlsConfig) -> Result<rustls::ServerConfig> {
    let bad = |what: &str, path: &PathBuf, e: &dyn std::fmt::Display| {
        Error::Config(format!("tls.{what} {}: {e}", path.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert_file)
        .map_err(|e| bad("cert_file", &config.cert_file, &e))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("cert_file", &config.cert_file, &e))?;
    if certs.is_empty() {
        return Err(bad("cert_file", &config.cert_file, &"no certificate in it"));
    }
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| bad("key_file", &config.key_file, &e))?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Config(format!("tls: {e}")))?;
    let server = if config.client_certificates {
        server.with_client_cert_verifier(Arc::new(AnyClientCertificate(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))))
    } else {
        server.with_no_client_auth()
    };
    let mut server = server
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("tls: the key does not fit the certificate: {e}")))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(server)
}

/// Takes whatever certificate a client presents, once it proves it holds the certificate's key
/// (the handshake signature is checked): which certificates are welcome is decided per partner,
/// by the SHA-256 pinned with its key, not by a CA.
#[derive(Debug)]
struct AnyClientCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::server::danger::ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The SHA-256 of a client's certificate (DER), as partners' pins hold it: lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate(pub String);

impl ClientCertificate {
    pub fn of(der: &[u8]) -> ClientCertificate {
        use sha2::Digest;
        ClientCertificate(crate::access::secret::hex(&sha2::Sha256::digest(der)))
    }

    /// The pin of the first certificate in a PEM file (`partner add --certificate`).
    pub fn of_pem_file(path: &std::path::Path) -> Result<ClientCertificate> {
        let first = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::invalid("certificate", format!("{}: {e}", path.display())))?
            .next()
            .ok_or_else(|| {
                Error::invalid(
                    "certificate",
                    format!("{}: no certificate in it", path.display()),
                )
            })?
            .map_err(|e| Error::invalid("certificate", format!("{}: {e}", path.display())))?;
        Ok(ClientCertificate::of(first.as_ref()))
    }
}

/// A TLS client that verifies servers against `ca_file` (PEM, one or more CAs) when given, else
/// against the system's trust store. The error says which file and why; the caller names the
/// connection it is for.
pub fn client_config(
    ca_file: Option<&std::path::Path>,
) -> std::result::Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |e: &dyn std::fmt::Display| format!("ca_file {}: {e}", path.display());
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(&e))? {
                roots.add(cert.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no certificate in the file"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system trust store could not be read");
            }
            // Unparseable system certificates are skipped, as every TLS client does.
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth())
}
