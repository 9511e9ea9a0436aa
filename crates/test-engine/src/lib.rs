//! A loopback oVirt engine for tests.
//!
//! It serves the engine side of host-register v1 and `pki-resource` over HTTPS on
//! `127.0.0.1`, with a CA made per engine, records every request it gets and the hosts
//! that registered, and injects the faults a node must survive: connections dropped for
//! the first N requests, slow answers, a certificate for another name, a changed CA, an
//! HTML page instead of the SSH key, HTML-wrapped error messages.
//!
//! Setup failures panic: this crate only runs inside tests, where a panic is a failed
//! test with its location.

#![allow(clippy::expect_used)]

mod http;
pub mod pki;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::ServerConfig;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::pki::Ca;

/// Faults the engine injects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Close this many incoming connections at once, before TLS (the engine looks
    /// unreachable); counts down.
    pub drop_connections: usize,
    /// Wait this long before answering each request.
    pub delay: Duration,
    /// Answer `get-ssh-trust` (and the key's `pki-resource`) with 200 and an HTML page.
    pub html_instead_of_ssh_key: bool,
    /// Wrap 400 messages in an HTML page, as a servlet container may.
    pub html_errors: bool,
    /// End the SSH key with a newline, as engines before 4.4.5 do.
    pub ssh_key_newline: bool,
    /// Refuse `register` with 400 and this message.
    pub register_error: Option<String>,
}

/// One request the engine received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `HEAD`, `POST`, …
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query exactly as sent (still percent-encoded).
    pub raw_query: String,
    /// The decoded query parameters, in order.
    pub params: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of parameter `name`, decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A host as the engine lists it after `register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredHost {
    /// The id, with characters outside `[A-Za-z0-9-.:_]` stripped.
    pub unique_id: String,
    /// Every parameter of the first `register` for this id.
    pub params: Vec<(String, String)>,
    /// How many times `register` was sent for this id.
    pub registrations: u32,
}

impl RegisteredHost {
    /// The value of parameter `name` in the first registration.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) ca: Ca,
    /// A CA served by get-pki-trust instead of the one that signed the server
    /// certificate, as an impostor between node and engine would.
    pub(crate) decoy_ca: Option<Ca>,
    ca_generation: u32,
    pub(crate) names: Vec<String>,
    pub(crate) tls: Arc<ServerConfig>,
    pub(crate) ssh_key: String,
    pub(crate) faults: Faults,
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) hosts: BTreeMap<String, RegisteredHost>,
}

pub(crate) type Shared = Arc<Mutex<State>>;

pub(crate) fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A test thread that panicked while holding the lock leaves usable data behind.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds a [`TestEngine`].
#[derive(Debug, Clone)]
pub struct EngineBuilder {
    names: Vec<String>,
    ssh_key: Option<String>,
    faults: Faults,
}

impl EngineBuilder {
    /// The names the server certificate carries (default `localhost` and `127.0.0.1`).
    pub fn certificate_names(mut self, names: &[&str]) -> Self {
        self.names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// The SSH public key line served by `get-ssh-trust` (default: a generated Ed25519
    /// key with comment `ovirt-engine`).
    pub fn ssh_public_key(mut self, line: &str) -> Self {
        self.ssh_key = Some(line.trim_end().to_string());
        self
    }

    /// Faults from the start.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Starts the engine on `127.0.0.1` and an ephemeral port.
    pub fn start(self) -> TestEngine {
        let ca = Ca::new(1);
        let tls = ca.server_config(&self.names);
        let state = State {
            ca,
            decoy_ca: None,
            ca_generation: 1,
            tls,
            names: self.names,
            ssh_key: self.ssh_key.unwrap_or_else(generated_ssh_key),
            faults: self.faults,
            requests: Vec::new(),
            hosts: BTreeMap::new(),
        };
        let shared = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::spawn(move || http::serve(listener, shared, stop))
        };
        TestEngine {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }
}

/// An engine listening on `127.0.0.1`; it stops when dropped.
#[derive(Debug)]
pub struct TestEngine {
    addr: SocketAddr,
    shared: Shared,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestEngine {
    /// A builder with the defaults.
    pub fn builder() -> EngineBuilder {
        EngineBuilder {
            names: vec!["localhost".into(), "127.0.0.1".into()],
            ssh_key: None,
            faults: Faults::default(),
        }
    }

    /// An engine with the defaults.
    pub fn start() -> Self {
        Self::builder().start()
    }

    /// The address to give the node (`127.0.0.1`).
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The HTTPS port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The CA certificate, PEM, as served (76-character lines).
    pub fn ca_pem(&self) -> String {
        lock(&self.shared).ca.pem()
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Vec<u8> {
        lock(&self.shared).ca.der()
    }

    /// The CA's SHA-256 fingerprint as `SHA256:` and lower-case hex.
    pub fn ca_sha256_hex(&self) -> String {
        let digest = Sha256::digest(self.ca_der());
        format!("SHA256:{}", hex(&digest, ""))
    }

    /// The CA's SHA-256 fingerprint as `SHA256:` and padded base64.
    pub fn ca_sha256_base64(&self) -> String {
        format!("SHA256:{}", STANDARD.encode(Sha256::digest(self.ca_der())))
    }

    /// The CA's SHA-1 fingerprint as colon-separated lower-case hex (vdsm-tool's form).
    pub fn ca_sha1_colon(&self) -> String {
        hex(&Sha1::digest(self.ca_der()), ":")
    }

    /// The SSH key line the engine serves (without newline).
    pub fn ssh_key(&self) -> String {
        lock(&self.shared).ssh_key.clone()
    }

    /// Replaces the faults.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared).faults = faults;
    }

    /// The faults now in force (`drop_connections` counts down).
    pub fn faults(&self) -> Faults {
        lock(&self.shared).faults.clone()
    }

    /// Replaces the CA (and the server certificate with one it signs), as an engine
    /// that was reinstalled would.
    pub fn rotate_ca(&self) {
        let mut state = lock(&self.shared);
        state.ca_generation += 1;
        state.ca = Ca::new(state.ca_generation);
        state.tls = state.ca.server_config(&state.names);
    }

    /// A host certificate for `name` signed by the engine's CA, PEM: what the engine's
    /// host deploy leaves in `/etc/pki/vdsm/certs/vdsmcert.pem`.
    pub fn issue_host_certificate(&self, name: &str) -> String {
        lock(&self.shared).ca.host_certificate(name)
    }

    /// Serves another CA from `get-pki-trust` than the one that signed the server
    /// certificate (an impostor in the middle); returns that CA's SHA-256 fingerprint
    /// as `SHA256:` and hex.
    pub fn serve_decoy_ca(&self) -> String {
        let decoy = Ca::new(1000);
        let fingerprint = format!("SHA256:{}", hex(&Sha256::digest(decoy.der()), ""));
        lock(&self.shared).decoy_ca = Some(decoy);
        fingerprint
    }

    /// Serves a certificate, signed by the same CA, for `names` instead.
    pub fn serve_certificate_for(&self, names: &[&str]) {
        let mut state = lock(&self.shared);
        state.names = names.iter().map(|s| s.to_string()).collect();
        state.tls = state.ca.server_config(&state.names);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.clone()
    }

    /// The `command` parameters of every host-register request, in order.
    pub fn commands(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|r| r.path == http::REGISTER_PATH)
            .map(|r| r.param("command").unwrap_or("").to_string())
            .collect()
    }

    /// The hosts that registered, by unique id.
    pub fn hosts(&self) -> BTreeMap<String, RegisteredHost> {
        lock(&self.shared).hosts.clone()
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A syntactically valid Ed25519 public key with random key bytes.
fn generated_ssh_key() -> String {
    let mut key = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut key)
        .expect("random bytes");
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&key);
    format!("ssh-ed25519 {} ovirt-engine", STANDARD.encode(blob))
}

/// The base64 body of a PEM text, without its armour lines and line breaks: two PEM
/// texts of the same certificate have the same body whatever their line length.
pub fn pem_body(pem: &str) -> String {
    pem.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect()
}

pub(crate) fn hex(bytes: &[u8], sep: &str) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(sep)
}
