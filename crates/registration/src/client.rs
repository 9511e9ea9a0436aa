//! The HTTPS client for the engine's host-register v1 service.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::CertificateError;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use ureq::tls::{Certificate, RootCerts, TlsConfig};

use crate::sshkey::SshPublicKey;
use crate::{CaFingerprints, Error, Result};

/// Path of the registration service on the engine.
const REGISTER_PATH: &str = "/ovirt-engine/services/host-register";
/// The protocol version this client speaks.
const PROTOCOL_VERSION: &str = "1";
/// How long one request may take, connection included, unless the caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Answers larger than this are not from a host-register service.
const BODY_LIMIT: u64 = 1024 * 1024;

/// Characters left as they are in query values: RFC 3986 unreserved; all else is
/// percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where the engine is: host name or address, and HTTPS port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineAddr {
    /// FQDN or IP address, as the engine's certificate must name it.
    pub host: String,
    /// HTTPS port; 443 unless the engine is elsewhere.
    pub port: u16,
}

impl EngineAddr {
    /// An engine at `host`, port `port`. The host must be a plain name or address.
    pub fn new(host: &str, port: u16) -> Result<Self> {
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_');
        let ipv6 = host.contains(':');
        if host.is_empty()
            || port == 0
            || !host.chars().all(plain)
            || (ipv6 && host.parse::<std::net::Ipv6Addr>().is_err())
        {
            return Err(Error::BadEngineAddress(host.to_string()));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `host` or `[host]` (IPv6) followed by `:port`.
    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for EngineAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.authority())
    }
}

impl FromStr for EngineAddr {
    type Err = Error;

    /// `FQDN`, `FQDN:PORT`, `IPv4:PORT`, `[IPv6]` or `[IPv6]:PORT`, as in the kernel
    /// argument `hvnode.engine=`.
    fn from_str(text: &str) -> Result<Self> {
        let bad = || Error::BadEngineAddress(text.to_string());
        let text = text.trim();
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad()),
            }
        } else if text.matches(':').count() == 1 {
            let (host, port) = text.split_once(':').ok_or_else(bad)?;
            (host, Some(port))
        } else {
            (text, None)
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => 443,
        };
        Self::new(host, port)
    }
}

/// The engine's CA certificate as fetched, before anyone trusts it.
#[derive(Debug, Clone)]
pub struct FetchedCa {
    /// The certificate alone, PEM (anything else the answer held is dropped, so that
    /// only the certificate whose fingerprint was confirmed is ever stored).
    pub pem: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its fingerprints.
    pub fingerprints: CaFingerprints,
}

impl FetchedCa {
    /// Parses the first certificate of a PEM text.
    pub fn from_pem(text: &str) -> Result<Self> {
        let der = CertificateDer::from_pem_slice(text.as_bytes())
            .map_err(|e| Error::BadCa(format!("{e}; it began with {:?}", excerpt(text))))?;
        let der = der.as_ref().to_vec();
        Ok(Self {
            pem: pem_certificate(&der),
            fingerprints: CaFingerprints::of_der(&der),
            der,
        })
    }
}

/// `der` as a PEM certificate with 64-character lines.
fn pem_certificate(der: &[u8]) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// What `register` tells the engine about the node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterParams {
    /// The node's unique id (lower-case).
    pub unique_id: String,
    /// FQDN or IP the engine uses to reach the node; the engine uses the requester's
    /// reverse DNS when absent.
    pub address: Option<String>,
    /// Display name; the engine uses the address when absent.
    pub name: Option<String>,
    /// User the engine logs in as.
    pub ssh_user: Option<String>,
    /// SSH port.
    pub ssh_port: Option<u16>,
    /// `SHA256:…` of the node's SSH host key.
    pub ssh_key_fingerprint: Option<String>,
    /// VDSM port.
    pub vds_port: Option<u16>,
}

impl RegisterParams {
    /// The query parameters, in a fixed order, absent ones left out.
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("uniqueId", self.unique_id.clone())];
        let optional = [
            ("address", self.address.clone()),
            ("name", self.name.clone()),
            ("sshUser", self.ssh_user.clone()),
            ("sshPort", self.ssh_port.map(|p| p.to_string())),
            ("sshKeyFingerprint", self.ssh_key_fingerprint.clone()),
            ("vdsPort", self.vds_port.map(|p| p.to_string())),
        ];
        q.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
        q
    }
}

/// One answer from the engine.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

/// A client for one engine: either unverified (only to fetch the CA) or verifying the
/// engine's certificate against its CA, host name included.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    engine: EngineAddr,
}

impl Client {
    /// A client that does not verify the engine's certificate: only for `get-pki-trust`,
    /// whose answer is then confirmed by fingerprint.
    pub fn unverified(engine: &EngineAddr, timeout: Duration) -> Self {
        let tls = TlsConfig::builder().disable_verification(true).build();
        Self::with_tls(engine, tls, timeout)
    }

    /// A client that trusts exactly the CA `ca_der` and checks the engine's host name.
    pub fn verified(engine: &EngineAddr, ca_der: &[u8], timeout: Duration) -> Self {
        let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_der(ca_der).to_owned()]));
        let tls = TlsConfig::builder().root_certs(roots).build();
        Self::with_tls(engine, tls, timeout)
    }

    fn with_tls(engine: &EngineAddr, tls: TlsConfig, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .https_only(true)
            // The node talks to its engine directly; a proxy from the environment
            // would see the unverified CA fetch and could answer it.
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .user_agent(concat!("hvnode-registration/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Self {
            agent,
            engine: engine.clone(),
        }
    }

    /// The engine this client talks to.
    pub fn engine(&self) -> &EngineAddr {
        &self.engine
    }

    /// The URL of `command` with `params`, every value percent-encoded.
    pub fn command_url(&self, command: &str, params: &[(&str, String)]) -> String {
        let mut url = format!(
            "https://{}{REGISTER_PATH}?version={PROTOCOL_VERSION}&command={}",
            self.engine.authority(),
            utf8_percent_encode(command, QUERY_VALUE)
        );
        for (key, value) in params {
            url.push('&');
            url.push_str(key);
            url.push('=');
            url.extend(utf8_percent_encode(value, QUERY_VALUE));
        }
        url
    }

    fn call(&self, command: &str, params: &[(&str, String)]) -> Result<Answer> {
        let url = self.command_url(command, params);
        let mut response = self.agent.get(&url).call().map_err(|e| self.classify(e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| self.classify(e))?;
        match status {
            200 => Ok(Answer { status, body }),
            400 => Err(Error::EngineRejected {
                command: command.to_string(),
                message: engine_message(&body),
            }),
            _ => Err(Error::UnexpectedAnswer {
                command: command.to_string(),
                detail: format!("HTTP {status}: {}", engine_message(&body)),
            }),
        }
    }

    /// `get-version`: the protocol version the engine speaks (1).
    pub fn get_version(&self) -> Result<u32> {
        let answer = self.call("get-version", &[])?;
        answer
            .body
            .trim()
            .parse()
            .map_err(|_| Error::UnexpectedAnswer {
                command: "get-version".into(),
                detail: format!(
                    "HTTP {}: {:?} is not a version number",
                    answer.status,
                    excerpt(&answer.body)
                ),
            })
    }

    /// `get-pki-trust`: the engine's CA certificate.
    pub fn get_pki_trust(&self) -> Result<FetchedCa> {
        let answer = self.call("get-pki-trust", &[])?;
        FetchedCa::from_pem(&answer.body)
    }

    /// `get-ssh-trust`: the engine's SSH public key, validated as one OpenSSH line.
    pub fn get_ssh_trust(&self) -> Result<SshPublicKey> {
        let answer = self.call("get-ssh-trust", &[])?;
        SshPublicKey::parse_line(&answer.body).map_err(|reason| Error::NotAnSshKey {
            reason,
            excerpt: excerpt(&answer.body),
        })
    }

    /// `register`: asks the engine to add this node; the engine answers `OK`.
    pub fn register(&self, params: &RegisterParams) -> Result<()> {
        let answer = self.call("register", &params.query())?;
        if answer.body.trim() == "OK" {
            Ok(())
        } else {
            Err(Error::UnexpectedAnswer {
                command: "register".into(),
                detail: format!("expected OK, got {:?}", excerpt(&answer.body)),
            })
        }
    }

    /// Turns a transport error into one of this crate's plain-words errors.
    fn classify(&self, error: ureq::Error) -> Error {
        let engine = self.engine.to_string();
        if let Some(tls) = rustls_error(&error) {
            return match tls {
                rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
                    Error::HostMismatch {
                        expected: self.engine.host.clone(),
                        presented: Vec::new(),
                    }
                }
                rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                    presented,
                    ..
                }) => Error::HostMismatch {
                    expected: self.engine.host.clone(),
                    presented: presented.iter().map(|n| plain_name(n)).collect(),
                },
                rustls::Error::InvalidCertificate(problem) => Error::Untrusted {
                    engine,
                    detail: certificate_problem(problem),
                },
                other => Error::Unreachable {
                    engine,
                    reason: format!("TLS failed: {other}"),
                },
            };
        }
        let reason = match &error {
            ureq::Error::Timeout(_) => "no answer in time".to_string(),
            ureq::Error::HostNotFound => "its name does not resolve".to_string(),
            ureq::Error::ConnectionFailed => "the connection failed".to_string(),
            ureq::Error::Io(e) => io_reason(e),
            other => other.to_string(),
        };
        Error::Unreachable { engine, reason }
    }
}

/// `DnsName("a.example")` or `IpAddress(192.0.2.1)`, as the TLS layer reports the names
/// in a certificate, becomes `a.example` or `192.0.2.1`.
fn plain_name(name: &str) -> String {
    let inner = name
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or(name);
    inner.trim_matches('"').to_string()
}

/// A certificate problem in words.
fn certificate_problem(problem: &CertificateError) -> String {
    match problem {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "the engine CA confirmed for this node did not sign it".into()
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "it has expired".into()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "it is not valid yet (check the node's clock)".into()
        }
        other => format!("{other:?}"),
    }
}

fn rustls_error(error: &ureq::Error) -> Option<&rustls::Error> {
    match error {
        ureq::Error::Rustls(e) => Some(e),
        ureq::Error::Io(e) => e.get_ref()?.downcast_ref::<rustls::Error>(),
        _ => None,
    }
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof | K::BrokenPipe => {
            "the connection was closed before an answer".into()
        }
        K::TimedOut | K::WouldBlock => "no answer in time".into(),
        _ => e.to_string(),
    }
}

/// The engine's message from an error body: the servlet container may wrap the short
/// text in an HTML page, so tags are dropped and the page body preferred. Public for
/// the fuzz target `registration_replies`.
pub fn engine_message(body: &str) -> String {
    let lower = body.to_ascii_lowercase();
    let inner = match (lower.find("<body"), lower.rfind("</body>")) {
        (Some(start), Some(end)) if start < end => &body[start..end],
        _ => body,
    };
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        "(no message)".to_string()
    } else {
        words.join(" ")
    }
}

/// The first characters of an answer, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_addresses() {
        for (text, host, port) in [
            ("engine.example.com", "engine.example.com", 443),
            ("Engine.Example.com:8443", "engine.example.com", 8443),
            ("192.0.2.7:444", "192.0.2.7", 444),
            ("[2001:db8::1]:8443", "2001:db8::1", 8443),
            ("[2001:db8::1]", "2001:db8::1", 443),
            ("2001:db8::1", "2001:db8::1", 443),
        ] {
            let addr: EngineAddr = text.parse().unwrap();
            assert_eq!((addr.host.as_str(), addr.port), (host, port), "{text}");
        }
        for bad in [
            "",
            "engine:port",
            "a/b",
            "user@engine",
            "engine:99999",
            "[::1",
        ] {
            assert!(bad.parse::<EngineAddr>().is_err(), "{bad:?}");
        }
        assert!(EngineAddr::new("engine:8443", 443).is_err());
        assert!(EngineAddr::new("engine", 0).is_err());
        let v6: EngineAddr = "[::1]:8443".parse().unwrap();
        assert_eq!(v6.to_string(), "[::1]:8443");
    }

    #[test]
    fn urls_carry_port_version_and_encoded_values() {
        let engine = EngineAddr::new("engine.example.com", 8443).unwrap();
        let client = Client::unverified(&engine, DEFAULT_TIMEOUT);
        let params = RegisterParams {
            unique_id: "abc".into(),
            name: Some("node 1 & co/é".into()),
            ssh_key_fingerprint: Some("SHA256:a+b/c=".into()),
            vds_port: Some(54321),
            ..Default::default()
        };
        let url = client.command_url("register", &params.query());
        assert_eq!(
            url,
            "https://engine.example.com:8443/ovirt-engine/services/host-register?version=1\
             &command=register&uniqueId=abc&name=node%201%20%26%20co%2F%C3%A9\
             &sshKeyFingerprint=SHA256%3Aa%2Bb%2Fc%3D&vdsPort=54321"
        );
        assert!(!url.contains("&port="));
    }

    #[test]
    fn certificate_names_are_shown_plainly() {
        assert_eq!(
            plain_name("DnsName(\"engine.example.com\")"),
            "engine.example.com"
        );
        assert_eq!(plain_name("IpAddress(192.0.2.1)"), "192.0.2.1");
        assert_eq!(plain_name("other"), "other");
    }

    #[test]
    fn engine_messages_lose_their_html() {
        for (body, message) in [
            ("Invalid command", "Invalid command"),
            ("Invalid command\n", "Invalid command"),
            (
                "<html><head><title>Error</title></head><body><h1>Invalid registration \
                 protocol version 2</h1></body></html>",
                "Invalid registration protocol version 2",
            ),
            ("<p>a &amp; b</p>", "a & b"),
            ("", "(no message)"),
        ] {
            assert_eq!(engine_message(body), message);
        }
    }

    #[test]
    fn only_the_first_certificate_is_kept() {
        let one = pem_certificate(b"first certificate bytes");
        let two = pem_certificate(b"second certificate bytes");
        let fetched = FetchedCa::from_pem(&format!("junk before\n{one}{two}")).unwrap();
        assert_eq!(fetched.der, b"first certificate bytes");
        assert_eq!(fetched.pem, one);
    }

    #[test]
    fn ca_answer_must_be_pem() {
        assert!(matches!(
            FetchedCa::from_pem("<html>nope</html>"),
            Err(Error::BadCa(_))
        ));
    }
}
