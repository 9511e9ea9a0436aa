//! A certificate authority made per test, and server certificates it signs.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The engine's internal CA; also the engine CA of the tests that stand in for
/// an engine's client (the engine link's tests and benchmark).
pub struct Ca {
    key: KeyPair,
    cert: Certificate,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

impl Ca {
    /// A new self-signed CA; `generation` goes into its name so that a rotated CA differs.
    pub(crate) fn new(generation: u32) -> Self {
        Self::named(&format!("test-engine CA {generation}"))
    }

    /// A new self-signed CA named `name`.
    pub fn named(name: &str) -> Self {
        let key = KeyPair::generate().expect("generating the test CA key");
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "hvnode test engine");
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("signing the test CA");
        Self { key, cert }
    }

    /// The CA certificate as PEM the way the engine serves it: base64 in 76-character
    /// lines.
    pub fn pem(&self) -> String {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(self.cert.der());
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(76) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// The CA certificate as DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A host certificate for `name` signed by this CA, PEM, as the engine's host deploy
    /// leaves it on a node (server and client use).
    pub(crate) fn host_certificate(&self, name: &str) -> String {
        self.issue(name).0
    }

    /// A certificate for `name` signed by this CA for both ends of the engine's
    /// link (server and client use), as the engine issues them, and its key:
    /// (certificate PEM, key PEM).
    pub fn issue(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("generating the key");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("the name is valid");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signing the certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// A TLS server configuration presenting a certificate for `names` signed by this CA.
    pub(crate) fn server_config(&self, names: &[String]) -> Arc<ServerConfig> {
        let key = KeyPair::generate().expect("generating the server key");
        let mut params = CertificateParams::new(names.to_vec()).expect("server names are valid");
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = dn;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let leaf = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signing the server certificate");
        let chain = vec![CertificateDer::from(leaf.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .expect("server certificate and key match");
        Arc::new(config)
    }
}
