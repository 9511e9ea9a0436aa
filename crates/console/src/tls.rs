//! The console's TLS certificate: the administrator's if there is one, otherwise a
//! self-signed one the console makes and keeps fresh.
//!
//! The certificates directory holds `NAME.cert` (or `NAME.crt`) files, each with a PEM
//! certificate chain and either the private key in the same file or in `NAME.key`
//! beside it. The highest file name wins, so an administrator's `50-admin.cert` takes
//! precedence over the generated `0-self-signed.cert`. Keys are written with mode 0600.
//!
//! The self-signed certificate names the node: subject CN the host name, and as
//! subject alternative names the host name, its fully qualified name when
//! `/etc/hosts` gives one, `localhost` and the node's addresses. It is valid from a day
//! before it was made (clocks differ) for a year, and made anew at start when it
//! expires within 30 days, when the host name (or the fully qualified name) changed,
//! or when it cannot be used. Only a certificate the console made itself is ever
//! replaced: `0-self-signed.generated` beside it names its SHA-256, so a certificate an
//! administrator put in its place (under any name) is never touched; neither is the
//! console's own once that file is removed. A `0-self-signed.cert` of versions before
//! that file existed is recognised by rcgen's default subject and replaced.

mod x509;

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

pub use x509::{Facts, facts};

/// The name of the certificate generated when the directory has none.
pub const SELF_SIGNED: &str = "0-self-signed";

/// How long a self-signed certificate is valid for.
pub const VALIDITY: Duration = Duration::from_secs(365 * DAY);
/// A self-signed certificate is valid from this long before it was made, for clients
/// whose clock is behind.
pub const BACKDATED: Duration = Duration::from_secs(DAY);
/// A self-signed certificate that expires within this long is made anew at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * DAY);

const DAY: u64 = 86_400;

/// The subject common name rcgen gives a certificate when told none: the console's
/// self-signed certificates had it before they named the node.
const RCGEN_DEFAULT_CN: &str = "rcgen self signed cert";

/// A certificate that could not be found, made or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {what}", path.display())]
    Invalid { path: PathBuf, what: String },
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "writing the self-signed certificate: {0}; check that the certificates directory \
         is writable by the agent and its file system not full"
    )]
    Write(#[from] fsutil::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The `*.cert` or `*.crt` file that wins: the highest file name.
pub fn chosen_certificate(dir: &Path) -> Result<Option<PathBuf>, TlsError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut certs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "cert" || x == "crt") && p.is_file())
        .collect();
    certs.sort();
    Ok(certs.pop())
}

/// What the self-signed certificate names: the node's host name, its fully qualified
/// name and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNames {
    /// The host name; `localhost` on a system that has none.
    pub host: String,
    /// The host name's fully qualified form, when it differs from the host name.
    pub fqdn: Option<String>,
    /// The node's addresses (besides 127.0.0.1 and ::1, which every certificate names).
    pub addresses: Vec<IpAddr>,
}

impl NodeNames {
    /// `host` alone (`localhost` when empty), without a fully qualified name or
    /// addresses.
    pub fn new(host: &str) -> Self {
        let host = host.trim();
        Self {
            host: if host.is_empty() {
                "localhost".into()
            } else {
                host.into()
            },
            fqdn: None,
            addresses: Vec::new(),
        }
    }

    /// This node: its host name, the fully qualified name `/etc/hosts` gives it (as
    /// `hostname --fqdn` finds it without DNS) and the addresses of its interfaces
    /// (getifaddrs); what cannot be read is left out.
    pub fn of_this_host() -> Self {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut names = Self::new(&host);
        names.fqdn = fs::read_to_string("/etc/hosts")
            .ok()
            .and_then(|hosts| fqdn_from_hosts(&hosts, &names.host));
        // getifaddrs(3), not `ip addr`: the agent starts no program for this
        // (under NoNewPrivileges SELinux refuses it the move to ifconfig_t).
        match nix::ifaddrs::getifaddrs() {
            Ok(addrs) => {
                let mut found: Vec<IpAddr> = Vec::new();
                for ip in addrs.filter_map(|a| {
                    let sa = a.address?;
                    sa.as_sockaddr_in()
                        .map(|v4| IpAddr::V4(v4.ip()))
                        .or_else(|| sa.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                }) {
                    if certifiable(ip) && !found.contains(&ip) {
                        found.push(ip);
                    }
                }
                names.addresses = found;
            }
            Err(e) => tracing::info!(
                "reading the node's addresses for its self-signed certificate: {e}; the \
                 certificate names the node's host name and loopback only"
            ),
        }
        names
    }

    /// The DNS names to certify: the host name, the fully qualified name, `localhost`.
    pub fn dns_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for name in [Some(&self.host), self.fqdn.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .chain(["localhost"])
        {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// The addresses to certify: loopback, then the node's, each once.
    pub fn ip_addresses(&self) -> Vec<IpAddr> {
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        for ip in &self.addresses {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        ips
    }
}

/// Whether a certificate may usefully name `ip`: not unspecified, multicast or
/// link-local (which needs an interface to mean anything).
fn certifiable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_unspecified() || v4.is_multicast() || v4.is_link_local()),
        IpAddr::V6(v6) => {
            !(v6.is_unspecified() || v6.is_multicast() || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The fully qualified name of `host` in the text of `/etc/hosts`: the first name of
/// the first line that has `host` among its names (the canonical name, which
/// `hostname --fqdn` prints), when it has a dot and differs from `host`.
pub fn fqdn_from_hosts(hosts: &str, host: &str) -> Option<String> {
    let canonical = hosts.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let _address = fields.next()?;
        let names: Vec<&str> = fields.collect();
        names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(host))
            .then(|| names.first().map(|n| n.to_string()))
            .flatten()
    })?;
    (canonical.contains('.') && !canonical.eq_ignore_ascii_case(host)).then_some(canonical)
}

/// Seconds since the epoch, never past what a certificate's dates can hold with a
/// year and a day to spare.
fn now_secs(now: u64) -> u64 {
    // 9998-12-31: OffsetDateTime stops at the end of 9999.
    now.min(253_370_764_800)
}

/// A new self-signed certificate and its key, in PEM, for `names`, valid from a day
/// before `now` (seconds since the epoch) for [`VALIDITY`].
pub fn make_self_signed(names: &NodeNames, now: u64) -> Result<(String, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.dns_names())?;
    params.subject_alt_names.extend(
        names
            .ip_addresses()
            .into_iter()
            .map(rcgen::SanType::IpAddress),
    );
    let mut subject = rcgen::DistinguishedName::new();
    subject.push(rcgen::DnType::CommonName, names.host.as_str());
    params.distinguished_name = subject;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = now_secs(now);
    params.not_before = epoch + Duration::from_secs(now.saturating_sub(BACKDATED.as_secs()));
    params.not_after = epoch + Duration::from_secs(now + VALIDITY.as_secs());
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn self_signed_path(dir: &Path) -> PathBuf {
    dir.join(format!("{SELF_SIGNED}.cert"))
}

fn marker_path(dir: &Path) -> PathBuf {
    dir.join(format!("{SELF_SIGNED}.generated"))
}

/// SHA-256 of `bytes`, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The text of the file that marks the certificates whose SHA-256 is among `hashes`
/// as the console's own.
fn marker_text(hashes: &[&str]) -> String {
    let mut text = format!(
        "# {SELF_SIGNED}.cert was made by the console (hvnode-agent), which makes it anew \
         at start\n# when it expires within 30 days or the host name changed. Remove this \
         file to keep\n# the certificate as it is; a certificate of your own belongs in a \
         file that sorts\n# higher, such as 50-node.cert.\n"
    );
    for h in hashes {
        text.push_str("sha256 ");
        text.push_str(h);
        text.push('\n');
    }
    text
}

/// Writes a new self-signed certificate for `names` into `dir`, made at `now`, in
/// place of the one there (if any): the marker first names both (or the new one
/// alone), then the key, the certificate and the marker naming the new one alone are
/// each replaced whole (a
/// temporary file renamed over the old), so that whatever the moment a crash stops
/// this, the certificate left is still known as the console's own and made anew at
/// the next start if its key does not fit.
pub fn generate_self_signed(dir: &Path, names: &NodeNames, now: u64) -> Result<PathBuf, TlsError> {
    // Only root needs to look into the directory that holds private keys.
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(io(dir))?;
    let (cert_pem, key_pem) = make_self_signed(names, now)?;
    let cert_path = self_signed_path(dir);
    let key_path = dir.join(format!("{SELF_SIGNED}.key"));
    let marker = marker_path(dir);
    let new_hash = sha256_hex(cert_pem.as_bytes());
    let old_hash = fs::read(&cert_path).ok().map(|old| sha256_hex(&old));
    let write = |path: &Path, text: &str, mode: u32| {
        let opts = fsutil::Options {
            create_parents: false,
            ..fsutil::Options::mode(mode)
        };
        fsutil::write_atomic(path, text.as_bytes(), opts)
    };
    let both: Vec<&str> = old_hash
        .iter()
        .map(String::as_str)
        .chain([new_hash.as_str()])
        .collect();
    write(&marker, &marker_text(&both), 0o644)?;
    write(&key_path, &key_pem, 0o600)?;
    write(&cert_path, &cert_pem, 0o644)?;
    write(&marker, &marker_text(&[&new_hash]), 0o644)?;
    Ok(cert_path)
}

/// Why the console's own self-signed certificate is made anew.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renewal {
    /// It cannot be read or used (with why).
    Unusable(String),
    /// It expires within [`RENEW_BEFORE`] (or has expired): at this time, seconds
    /// since the epoch.
    Expiring(i64),
    /// It names another host (its subject common name), or lacks the node's fully
    /// qualified name.
    Renamed(String),
    /// A certificate of an earlier version of the console (rcgen's default subject,
    /// valid until the year 4096).
    Old,
}

impl std::fmt::Display for Renewal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unusable(why) => write!(f, "it could not be used: {why}"),
            Self::Expiring(at) => write!(
                f,
                "it expires on {} UTC",
                hostinfo::units::UtcTime::from_unix(*at)
            ),
            Self::Renamed(old) => write!(f, "it was made for host {old:?}"),
            Self::Old => write!(
                f,
                "it is the console's old certificate, without the node's name and valid \
                 until 4096"
            ),
        }
    }
}

/// Whether `cert_path`, the certificate the console would serve, is its own
/// self-signed one and must be made anew at `now` for `names`, and why. `None` for a
/// certificate the console did not make (an administrator's), whatever its state.
pub fn renewal(dir: &Path, cert_path: &Path, names: &NodeNames, now: u64) -> Option<Renewal> {
    if cert_path != self_signed_path(dir) {
        return None;
    }
    let pem = fs::read(cert_path).ok()?;
    let first = CertificateDer::pem_slice_iter(&pem)
        .next()
        .and_then(Result::ok);
    let facts = first.as_deref().and_then(facts);
    let hash = sha256_hex(&pem);
    let marked = fs::read_to_string(marker_path(dir)).is_ok_and(|text| {
        text.lines()
            .any(|l| l.strip_prefix("sha256 ").is_some_and(|h| h.trim() == hash))
    });
    if !marked {
        // Not marked: the console's only if an earlier version made it.
        let old = facts
            .as_ref()
            .is_some_and(|f| f.common_name.as_deref() == Some(RCGEN_DEFAULT_CN));
        return old.then_some(Renewal::Old);
    }
    if let Err(e) = load(cert_path).and_then(|(chain, key)| rustls_config(cert_path, chain, key)) {
        return Some(Renewal::Unusable(e.to_string()));
    }
    let Some(facts) = facts else {
        return Some(Renewal::Unusable(
            "its certificate could not be read".into(),
        ));
    };
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let renew_before = i64::try_from(RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX);
    if facts.not_after.saturating_sub(now) < renew_before {
        return Some(Renewal::Expiring(facts.not_after));
    }
    let named = |n: &str| facts.dns_names.iter().any(|d| d.eq_ignore_ascii_case(n));
    let host_changed = !facts
        .common_name
        .as_deref()
        .is_some_and(|cn| cn.eq_ignore_ascii_case(&names.host));
    if host_changed || !names.dns_names().iter().all(|n| named(n)) {
        return Some(Renewal::Renamed(facts.common_name.unwrap_or_default()));
    }
    None
}

/// The certificate to serve from `dir` at `now`: the one that wins, after making the
/// console's own self-signed one when there is none and making it anew when it is
/// due ([`renewal`]). A renewal that fails leaves the old certificate in use, with a
/// warning.
pub fn ensure_certificate(dir: &Path, names: &NodeNames, now: u64) -> Result<PathBuf, TlsError> {
    let Some(path) = chosen_certificate(dir)? else {
        let path = generate_self_signed(dir, names, now)?;
        tracing::info!(certificate = %path.display(), host = %names.host, "made a self-signed certificate");
        return Ok(path);
    };
    let Some(why) = renewal(dir, &path, names, now) else {
        return Ok(path);
    };
    match generate_self_signed(dir, names, now) {
        Ok(path) => {
            tracing::info!(
                certificate = %path.display(),
                host = %names.host,
                "made the self-signed certificate anew: {why}"
            );
        }
        Err(e) => tracing::warn!(
            certificate = %path.display(),
            "the self-signed certificate is due to be made anew ({why}), but {e}; the \
             console serves the old one"
        ),
    }
    Ok(path)
}

/// Loads the certificate chain and key of `cert_path` (key in the same file or in the
/// `.key` file beside it).
pub fn load(
    cert_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let invalid = |what: String| TlsError::Invalid {
        path: cert_path.to_path_buf(),
        what,
    };
    let pem = fs::read(cert_path).map_err(io(cert_path))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("unreadable certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("no certificate in the file".into()));
    }
    let key = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(k) => k,
        Err(_) => {
            let key_path = cert_path.with_extension("key");
            let key_pem = fs::read(&key_path).map_err(io(&key_path))?;
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Invalid {
                path: key_path.clone(),
                what: format!("no usable private key: {e}"),
            })?
        }
    };
    Ok((chain, key))
}

/// The rustls configuration for the chosen certificate, making or renewing the
/// console's own first ([`ensure_certificate`]). Returns the configuration and the
/// certificate's path.
pub fn server_config(
    dir: &Path,
    names: &NodeNames,
) -> Result<(Arc<ServerConfig>, PathBuf), TlsError> {
    let path = ensure_certificate(dir, names, hostinfo::now_unix())?;
    let (chain, key) = load(&path)?;
    Ok((rustls_config(&path, chain, key)?, path))
}

/// The rustls configuration serving `chain` and `key` (from `path`).
fn rustls_config(
    path: &Path,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            what: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            path: path.to_path_buf(),
            what: format!("certificate and key do not fit: {e}"),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// 2027-01-15 08:00:00 UTC.
    const NOW: u64 = 1_799_995_200;

    fn node1() -> NodeNames {
        NodeNames {
            host: "node1".into(),
            fqdn: Some("node1.example.org".into()),
            addresses: vec!["192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap()],
        }
    }

    fn facts_of(path: &Path) -> Facts {
        let pem = fs::read(path).unwrap();
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap();
        facts(&der).unwrap()
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn first_start_generates_and_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("ws-certs.d");
        let (_, path) = server_config(&certs, &NodeNames::new("node1")).unwrap();
        assert_eq!(path, certs.join("0-self-signed.cert"));
        let key = certs.join("0-self-signed.key");
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(&certs).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "a directory made here is private");
        let first = fs::read(&path).unwrap();
        let (_, again) = server_config(&certs, &NodeNames::new("node1")).unwrap();
        assert_eq!(again, path);
        assert_eq!(fs::read(&again).unwrap(), first, "not regenerated");
    }

    #[test]
    fn the_self_signed_certificate_names_the_node_for_a_year_from_yesterday() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
        let f = facts_of(&path);
        assert_eq!(f.common_name.as_deref(), Some("node1"));
        assert_eq!(f.dns_names, ["node1", "node1.example.org", "localhost"]);
        let ips: Vec<String> = f.ip_addresses.iter().map(ToString::to_string).collect();
        assert_eq!(ips, ["127.0.0.1", "::1", "192.0.2.7", "2001:db8::7"]);
        assert_eq!(f.not_before, NOW as i64 - 86_400);
        assert_eq!(f.not_after, NOW as i64 + 365 * 86_400);
        // Key 0600, the marker names the certificate, nothing temporary is left.
        let mode = fs::metadata(dir.path().join("0-self-signed.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            names_in(dir.path()),
            [
                "0-self-signed.cert",
                "0-self-signed.generated",
                "0-self-signed.key"
            ]
        );
        let marker = fs::read_to_string(dir.path().join("0-self-signed.generated")).unwrap();
        let hash = sha256_hex(&fs::read(&path).unwrap());
        assert!(marker.contains(&format!("sha256 {hash}\n")), "{marker}");
        // And it serves.
        let (_, served) = server_config(dir.path(), &node1()).unwrap();
        assert_eq!(served, path);
        // A host without a name, or called localhost, is localhost once.
        let (pem, _) = make_self_signed(&NodeNames::new(""), NOW).unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let f = facts(&der).unwrap();
        assert_eq!(f.common_name.as_deref(), Some("localhost"));
        assert_eq!(f.dns_names, ["localhost"]);
    }

    #[test]
    fn renewed_at_start_within_30_days_of_expiry_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
        let made = fs::read(&path).unwrap();
        let expiry = NOW + 365 * 86_400;
        // 31 days before: kept.
        let early = expiry - 31 * 86_400;
        assert_eq!(renewal(dir.path(), &path, &node1(), early), None);
        ensure_certificate(dir.path(), &node1(), early).unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            made,
            "renewed 31 days before expiry"
        );
        // 29 days before: made anew, for a year from then.
        let late = expiry - 29 * 86_400;
        assert_eq!(
            renewal(dir.path(), &path, &node1(), late),
            Some(Renewal::Expiring(expiry as i64))
        );
        assert_eq!(
            ensure_certificate(dir.path(), &node1(), late).unwrap(),
            path
        );
        let f = facts_of(&path);
        assert_eq!(f.not_after, late as i64 + 365 * 86_400);
        assert_eq!(renewal(dir.path(), &path, &node1(), late), None);
        // Long expired: made anew too.
        let much_later = late + 3 * 365 * 86_400;
        assert!(matches!(
            renewal(dir.path(), &path, &node1(), much_later),
            Some(Renewal::Expiring(_))
        ));
        ensure_certificate(dir.path(), &node1(), much_later).unwrap();
        assert_eq!(facts_of(&path).not_before, much_later as i64 - 86_400);
        server_config(dir.path(), &node1()).unwrap();
    }

    #[test]
    fn renewed_at_start_when_the_host_name_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
        let renamed = NodeNames {
            host: "node2".into(),
            fqdn: Some("node2.example.org".into()),
            ..node1()
        };
        assert_eq!(
            renewal(dir.path(), &path, &renamed, NOW),
            Some(Renewal::Renamed("node1".into()))
        );
        ensure_certificate(dir.path(), &renamed, NOW).unwrap();
        let f = facts_of(&path);
        assert_eq!(f.common_name.as_deref(), Some("node2"));
        assert_eq!(f.dns_names, ["node2", "node2.example.org", "localhost"]);
        // The same host name, now with a fully qualified name in /etc/hosts.
        let short = NodeNames::new("node2");
        ensure_certificate(dir.path(), &short, NOW).unwrap();
        assert_eq!(
            renewal(dir.path(), &path, &short, NOW),
            None,
            "a name less is fine"
        );
        let qualified = NodeNames {
            fqdn: Some("node2.lab.example".into()),
            ..short
        };
        assert!(matches!(
            renewal(dir.path(), &path, &qualified, NOW),
            Some(Renewal::Renamed(_))
        ));
        // Case does not make a host name another.
        assert_eq!(
            renewal(dir.path(), &path, &NodeNames::new("NODE2"), NOW),
            None
        );
    }

    /// Writes an administrator's certificate for `host`, expiring `days` after NOW, to
    /// `name` (with its key inside).
    fn admin_certificate(dir: &Path, name: &str, host: &str, days: u64) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, host);
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs(NOW - 300 * 86_400);
        params.not_after = epoch + Duration::from_secs(NOW + days * 86_400);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let combined = format!("{}{}", cert.pem(), key.serialize_pem());
        fs::write(dir.join(name), &combined).unwrap();
        combined.into_bytes()
    }

    #[test]
    fn an_administrators_certificate_is_never_touched() {
        // Its own file, winning by name, about to expire and for another host; the
        // console's own beside it is not served and so not renewed either.
        let dir = tempfile::tempdir().unwrap();
        let own = generate_self_signed(dir.path(), &node1(), NOW - 360 * 86_400).unwrap();
        let own_bytes = fs::read(&own).unwrap();
        let admin = admin_certificate(dir.path(), "50-admin.cert", "other.example", 1);
        let path = ensure_certificate(dir.path(), &NodeNames::new("node9"), NOW).unwrap();
        assert_eq!(path, dir.path().join("50-admin.cert"));
        assert_eq!(
            renewal(dir.path(), &path, &NodeNames::new("node9"), NOW),
            None
        );
        assert_eq!(fs::read(&path).unwrap(), admin);
        assert_eq!(fs::read(&own).unwrap(), own_bytes);

        // In place of the console's own, where no marker names it.
        let dir = tempfile::tempdir().unwrap();
        let admin = admin_certificate(dir.path(), "0-self-signed.cert", "other.example", 1);
        let path = ensure_certificate(dir.path(), &node1(), NOW).unwrap();
        assert_eq!(renewal(dir.path(), &path, &node1(), NOW), None);
        assert_eq!(fs::read(&path).unwrap(), admin);
        assert!(!dir.path().join("0-self-signed.generated").exists());

        // Over the console's own, whose marker names the one it replaced.
        let dir = tempfile::tempdir().unwrap();
        generate_self_signed(dir.path(), &node1(), NOW).unwrap();
        let admin = admin_certificate(dir.path(), "0-self-signed.cert", "other.example", 1);
        let path = ensure_certificate(dir.path(), &node1(), NOW).unwrap();
        assert_eq!(renewal(dir.path(), &path, &node1(), NOW), None);
        assert_eq!(fs::read(&path).unwrap(), admin);

        // The console's own, kept as it is once its marker is removed.
        let dir = tempfile::tempdir().unwrap();
        let path = generate_self_signed(dir.path(), &node1(), NOW - 360 * 86_400).unwrap();
        let kept = fs::read(&path).unwrap();
        fs::remove_file(dir.path().join("0-self-signed.generated")).unwrap();
        ensure_certificate(dir.path(), &NodeNames::new("node9"), NOW).unwrap();
        assert_eq!(fs::read(&path).unwrap(), kept);
    }

    #[test]
    fn the_old_certificate_of_earlier_versions_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let old = rcgen::generate_simple_self_signed(vec![
            "node1".to_string(),
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        let path = dir.path().join("0-self-signed.cert");
        fs::write(&path, old.cert.pem()).unwrap();
        fs::write(
            dir.path().join("0-self-signed.key"),
            old.key_pair.serialize_pem(),
        )
        .unwrap();
        assert_eq!(
            renewal(dir.path(), &path, &node1(), NOW),
            Some(Renewal::Old)
        );
        let (_, served) = server_config(dir.path(), &node1()).unwrap();
        assert_eq!(served, path);
        let f = facts_of(&path);
        assert_eq!(f.common_name.as_deref(), Some("node1"));
        assert!(
            f.not_after < 4_000_000_000,
            "still valid until {}",
            f.not_after
        );
        assert!(dir.path().join("0-self-signed.generated").is_file());
    }

    #[test]
    fn a_renewal_stopped_half_way_is_finished_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
        let key_path = dir.path().join("0-self-signed.key");
        let marker = dir.path().join("0-self-signed.generated");
        let old_hash = sha256_hex(&fs::read(&path).unwrap());
        let (new_cert, new_key) = make_self_signed(&node1(), NOW).unwrap();
        let new_hash = sha256_hex(new_cert.as_bytes());
        // Stopped after the new key: the old certificate with the new key.
        fs::write(&marker, marker_text(&[&old_hash, &new_hash])).unwrap();
        fs::write(&key_path, &new_key).unwrap();
        assert!(matches!(
            renewal(dir.path(), &path, &node1(), NOW),
            Some(Renewal::Unusable(_))
        ));
        server_config(dir.path(), &node1()).expect("not made anew");
        // Stopped after the new certificate: its marker still names it, it serves.
        let (newer_cert, newer_key) = make_self_signed(&node1(), NOW).unwrap();
        let current = sha256_hex(&fs::read(&path).unwrap());
        let newer_hash = sha256_hex(newer_cert.as_bytes());
        fs::write(&marker, marker_text(&[&current, &newer_hash])).unwrap();
        fs::write(&key_path, &newer_key).unwrap();
        fs::write(&path, &newer_cert).unwrap();
        assert_eq!(renewal(dir.path(), &path, &node1(), NOW), None);
        server_config(dir.path(), &node1()).unwrap();
    }

    #[test]
    fn a_renewal_that_fails_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = generate_self_signed(dir.path(), &node1(), NOW).unwrap();
        // The key inside the certificate's file, and its key file impossible to
        // replace (a directory there).
        let key_path = dir.path().join("0-self-signed.key");
        let combined = format!(
            "{}{}",
            fs::read_to_string(&path).unwrap(),
            fs::read_to_string(&key_path).unwrap()
        );
        let marker = dir.path().join("0-self-signed.generated");
        fs::write(&path, &combined).unwrap();
        fs::write(&marker, marker_text(&[&sha256_hex(combined.as_bytes())])).unwrap();
        fs::remove_file(&key_path).unwrap();
        fs::create_dir(&key_path).unwrap();
        fs::write(key_path.join("x"), "").unwrap();
        let renamed = NodeNames::new("node2");
        assert!(renewal(dir.path(), &path, &renamed, NOW).is_some());
        let e = generate_self_signed(dir.path(), &renamed, NOW).unwrap_err();
        assert!(e.to_string().contains("0-self-signed.key"), "{e}");
        assert!(e.to_string().contains("check that"), "{e}");
        assert_eq!(ensure_certificate(dir.path(), &renamed, NOW).unwrap(), path);
        assert_eq!(fs::read_to_string(&path).unwrap(), combined);
    }

    #[test]
    fn the_fully_qualified_name_comes_from_etc_hosts_as_hostname_fqdn_finds_it() {
        let hosts = "127.0.0.1 localhost localhost.localdomain\n\
                     ::1 localhost ip6-localhost\n\
                     # 10.0.0.1 node1.wrong.example node1\n\
                     192.0.2.7\tnode1.example.org node1 # the node\n\
                     192.0.2.8 node2 node2.example.org\n";
        assert_eq!(
            fqdn_from_hosts(hosts, "node1").as_deref(),
            Some("node1.example.org")
        );
        assert_eq!(
            fqdn_from_hosts(hosts, "NODE1").as_deref(),
            Some("node1.example.org")
        );
        // Its canonical name is the short one, as `hostname --fqdn` would print.
        assert_eq!(fqdn_from_hosts(hosts, "node2"), None);
        assert_eq!(fqdn_from_hosts(hosts, "node1.example.org"), None);
        assert_eq!(fqdn_from_hosts(hosts, "node3"), None);
        assert_eq!(fqdn_from_hosts("127.0.0.1 localhost vm\n", "vm"), None);
    }

    #[test]
    fn only_useful_addresses_are_certified() {
        for (ip, useful) in [
            ("192.0.2.7", true),
            ("127.0.0.1", true),
            ("2001:db8::7", true),
            ("169.254.1.1", false),
            ("fe80::1", false),
            ("0.0.0.0", false),
            ("ff02::1", false),
        ] {
            assert_eq!(certifiable(ip.parse().unwrap()), useful, "{ip}");
        }
        let names = NodeNames {
            addresses: vec!["127.0.0.1".parse().unwrap(), "192.0.2.7".parse().unwrap()],
            ..NodeNames::new("localhost")
        };
        assert_eq!(names.dns_names(), ["localhost"]);
        let ips: Vec<String> = names
            .ip_addresses()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ips, ["127.0.0.1", "::1", "192.0.2.7"]);
    }

    #[test]
    fn this_host_has_a_name() {
        let names = NodeNames::of_this_host();
        assert!(!names.host.is_empty());
        assert!(names.dns_names().contains(&"localhost".to_string()));
    }

    #[test]
    fn highest_name_wins_with_key_in_same_file() {
        let dir = tempfile::tempdir().unwrap();
        generate_self_signed(dir.path(), &NodeNames::new("a"), NOW).unwrap();
        let admin = rcgen::generate_simple_self_signed(vec!["admin.example".into()]).unwrap();
        let combined = format!("{}{}", admin.cert.pem(), admin.key_pair.serialize_pem());
        fs::write(dir.path().join("50-admin.cert"), combined).unwrap();
        let (_, path) = server_config(dir.path(), &NodeNames::new("node1")).unwrap();
        assert_eq!(path, dir.path().join("50-admin.cert"));
    }

    #[test]
    fn a_crt_with_its_key_beside_it_counts_too() {
        let dir = tempfile::tempdir().unwrap();
        generate_self_signed(dir.path(), &NodeNames::new("a"), NOW).unwrap();
        let admin = rcgen::generate_simple_self_signed(vec!["node.example".into()]).unwrap();
        fs::write(dir.path().join("10-node.crt"), admin.cert.pem()).unwrap();
        fs::write(
            dir.path().join("10-node.key"),
            admin.key_pair.serialize_pem(),
        )
        .unwrap();
        let (_, path) = server_config(dir.path(), &NodeNames::new("node1")).unwrap();
        assert_eq!(path, dir.path().join("10-node.crt"));
        let (chain, _) = load(&path).unwrap();
        assert_eq!(chain.len(), 1);
    }

    #[test]
    fn broken_certificate_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("9-bad.cert"), "not pem").unwrap();
        let err = server_config(dir.path(), &NodeNames::new("n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("9-bad.cert"), "{err}");
    }
}
