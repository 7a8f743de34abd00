//! TLS for the simulator, as hosted providers speak it: a self-signed certificate made at start-up for
//! `localhost` and `127.0.0.1`, offering HTTP/2 and HTTP/1.1 by ALPN. The certificate (its PEM) is what a client
//! trusts to reach it.

use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// How long a client may take over its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the simulator's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot configure TLS: {0}")]
    Config(#[from] rustls::Error),
}

/// A simulator's TLS: what accepts connections, and the certificate clients check it with.
pub(crate) struct Tls {
    pub acceptor: TlsAcceptor,
    pub cert_pem: String,
}

impl Tls {
    pub(crate) fn self_signed() -> Result<Tls, TlsError> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls { acceptor: TlsAcceptor::from(Arc::new(config)), cert_pem: cert.pem() })
    }
}
