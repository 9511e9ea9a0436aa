//! The node's registration state: one enum, persisted as JSON, read by `nodectl` and
//! the console.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use crate::fsutil::{read_optional, write_atomic};
use crate::{CaFingerprints, EngineAddr, Error, ErrorKind, Result, Sysroot};

/// The `apiVersion` of the state file and of `nodectl register --json` output.
pub const API_VERSION: &str = "hvnode.io/v1";
/// The `kind` of the state file and of `nodectl register --status --json`.
pub const STATE_KIND: &str = "Registration";
/// Where the state is kept on the node.
pub const STATE_PATH: &str = "/var/lib/hvnode/registration.json";
/// Where the confirmed engine CA is kept (the reference client's path).
pub const CA_PATH: &str = "/etc/pki/ovirt-engine/ca.pem";
/// The host certificate the engine's host deploy leaves; its presence means "managed".
pub const MANAGED_CERT_PATH: &str = "/etc/pki/vdsm/certs/vdsmcert.pem";

/// What the node told the engine when it registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// The engine.
    pub engine: EngineAddr,
    /// Fingerprints of the confirmed engine CA.
    pub ca: CaFingerprints,
    /// The id sent as `uniqueId`.
    pub unique_id: String,
    /// The display name sent, if any.
    pub name: Option<String>,
    /// The address sent, if any.
    pub address: Option<String>,
    /// The SSH user the engine will log in as.
    pub ssh_user: String,
    /// The SSH port sent.
    pub ssh_port: u16,
    /// The node's SSH host key fingerprint sent, if the node had a host key.
    pub ssh_key_fingerprint: Option<String>,
    /// The VDSM port sent.
    pub vds_port: u16,
    /// When the engine accepted the registration (seconds since the epoch).
    pub registered_at: u64,
}

/// Where the node is in registering with an engine.
///
/// `unregistered → trust-fetched → awaiting-confirmation → registered → managed`, and
/// `failed` (with its attempt count and next retry time) from any step after the
/// administrator confirmed the CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RegistrationState {
    /// No engine known.
    Unregistered,
    /// The engine's CA was downloaded; nobody has seen its fingerprint yet.
    #[serde(rename_all = "camelCase")]
    TrustFetched {
        /// The engine.
        engine: EngineAddr,
        /// Fingerprints of the downloaded CA.
        ca: CaFingerprints,
        /// When it was downloaded.
        fetched_at: u64,
    },
    /// The fingerprints are shown to an administrator who has not answered yet.
    #[serde(rename_all = "camelCase")]
    AwaitingConfirmation {
        /// The engine.
        engine: EngineAddr,
        /// Fingerprints of the downloaded CA.
        ca: CaFingerprints,
        /// The CA confirmed at the last registration, when this one differs from it.
        previous_ca: Option<CaFingerprints>,
        /// Since when.
        since: u64,
    },
    /// The engine accepted the registration; it lists the host as pending approval.
    Registered(Registration),
    /// The engine approved the host and deployed it: its host certificate is present.
    #[serde(rename_all = "camelCase")]
    Managed {
        /// The registration.
        #[serde(flatten)]
        registration: Registration,
        /// When the host certificate was first seen.
        managed_since: u64,
    },
    /// The last attempt failed; a retrying service tries again at `next_retry_at`.
    #[serde(rename_all = "camelCase")]
    Failed {
        /// The engine.
        engine: EngineAddr,
        /// Fingerprints of the confirmed CA, once confirmed.
        ca: Option<CaFingerprints>,
        /// Attempts that failed in a row.
        attempts: u32,
        /// The kind of the last error.
        error_kind: ErrorKind,
        /// The last error, in words.
        last_error: String,
        /// When the last attempt failed.
        failed_at: u64,
        /// When to try again.
        next_retry_at: u64,
    },
}

impl RegistrationState {
    /// The state's name as stored (`registered`, `failed`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unregistered => "unregistered",
            Self::TrustFetched { .. } => "trust-fetched",
            Self::AwaitingConfirmation { .. } => "awaiting-confirmation",
            Self::Registered(_) => "registered",
            Self::Managed { .. } => "managed",
            Self::Failed { .. } => "failed",
        }
    }

    /// The engine this state is about.
    pub fn engine(&self) -> Option<&EngineAddr> {
        match self {
            Self::Unregistered => None,
            Self::TrustFetched { engine, .. }
            | Self::AwaitingConfirmation { engine, .. }
            | Self::Failed { engine, .. } => Some(engine),
            Self::Registered(r)
            | Self::Managed {
                registration: r, ..
            } => Some(&r.engine),
        }
    }

    /// Fingerprints of the CA an administrator confirmed for [`Self::engine`].
    pub fn confirmed_ca(&self) -> Option<&CaFingerprints> {
        match self {
            Self::Registered(r)
            | Self::Managed {
                registration: r, ..
            } => Some(&r.ca),
            Self::Failed { ca, .. } => ca.as_ref(),
            _ => None,
        }
    }

    /// The registration, once the engine accepted it.
    pub fn registration(&self) -> Option<&Registration> {
        match self {
            Self::Registered(r)
            | Self::Managed {
                registration: r, ..
            } => Some(r),
            _ => None,
        }
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        match self {
            Self::Unregistered => "not registered with an engine".into(),
            Self::TrustFetched { engine, .. } => {
                format!("CA of engine {engine} fetched, not yet confirmed")
            }
            Self::AwaitingConfirmation { engine, .. } => {
                format!("waiting for an administrator to confirm the CA of engine {engine}")
            }
            Self::Registered(r) => format!(
                "registered with engine {}, pending approval: approve the host in the engine",
                r.engine
            ),
            Self::Managed { registration, .. } => {
                format!("managed by engine {}", registration.engine)
            }
            Self::Failed {
                engine,
                attempts,
                last_error,
                ..
            } => format!(
                "registration with engine {engine} failed ({attempts} attempt{}): {last_error}",
                if *attempts == 1 { "" } else { "s" }
            ),
        }
    }
}

/// The state file's content: a versioned envelope around the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateFile {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Always `Registration`.
    pub kind: String,
    /// When the state last changed (seconds since the epoch; 0 if never).
    pub updated_at: u64,
    /// The state.
    pub status: RegistrationState,
}

impl StateFile {
    /// An envelope for `status`, stamped now.
    pub fn new(status: RegistrationState) -> Self {
        Self {
            api_version: API_VERSION.into(),
            kind: STATE_KIND.into(),
            updated_at: now_unix(),
            status,
        }
    }
}

pub use hostinfo::now_unix;

/// Reads the persisted state; a node that never registered is `unregistered`.
pub fn load_state(sysroot: &Sysroot) -> Result<StateFile> {
    let path = sysroot.path(STATE_PATH);
    let Some(text) = read_optional(&path)? else {
        return Ok(StateFile {
            updated_at: 0,
            ..StateFile::new(RegistrationState::Unregistered)
        });
    };
    let file: StateFile = serde_json::from_str(&text).map_err(|e| Error::BadState {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if file.api_version != API_VERSION || file.kind != STATE_KIND {
        return Err(Error::BadState {
            path,
            detail: format!(
                "it is {} {}, this program reads {API_VERSION} {STATE_KIND}",
                file.api_version, file.kind
            ),
        });
    }
    Ok(file)
}

/// Persists `status` atomically (temporary file, then rename).
pub fn save_state(sysroot: &Sysroot, status: &RegistrationState) -> Result<StateFile> {
    let file = StateFile::new(status.clone());
    let path = sysroot.path(STATE_PATH);
    let mut json = serde_json::to_string_pretty(&file).map_err(|e| Error::BadState {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    json.push('\n');
    write_atomic(&path, json.as_bytes(), 0o644, None)?;
    Ok(file)
}

/// The persisted state, brought up to date: `registered` becomes `managed` once the
/// engine's host certificate is there, and that change is saved (when the sysroot is
/// writable: a read-only tree still gets the up-to-date state back).
pub fn current_state(sysroot: &Sysroot) -> Result<StateFile> {
    let file = load_state(sysroot)?;
    let status = refresh_managed(sysroot, file.status.clone());
    if status == file.status {
        return Ok(file);
    }
    Ok(save_state(sysroot, &status).unwrap_or_else(|_| StateFile::new(status)))
}

/// `registered` becomes `managed` once the engine's host deploy has left a host
/// certificate signed by the engine CA confirmed for this registration; other states
/// are returned as they are.
pub fn refresh_managed(sysroot: &Sysroot, status: RegistrationState) -> RegistrationState {
    match status {
        RegistrationState::Registered(registration)
            if host_certificate_signed_by(sysroot, &registration.ca) =>
        {
            RegistrationState::Managed {
                registration,
                managed_since: now_unix(),
            }
        }
        other => other,
    }
}

/// Whether `MANAGED_CERT_PATH` holds a certificate, valid now, that chains to the CA
/// stored at `CA_PATH`, and that CA is the one with fingerprints `ca`. A certificate
/// left by an earlier engine does not count.
fn host_certificate_signed_by(sysroot: &Sysroot, ca: &CaFingerprints) -> bool {
    let Ok(ca_der) = CertificateDer::from_pem_file(sysroot.path(CA_PATH)) else {
        return false;
    };
    if CaFingerprints::of_der(&ca_der) != *ca {
        return false;
    }
    let Ok(host_der) = CertificateDer::from_pem_file(sysroot.path(MANAGED_CERT_PATH)) else {
        return false;
    };
    let (Ok(anchor), Ok(host)) = (
        webpki::anchor_from_trusted_cert(&ca_der),
        webpki::EndEntityCert::try_from(&host_der),
    ) else {
        return false;
    };
    let anchors = [anchor];
    let now = rustls_pki_types::UnixTime::now();
    // VDSM uses its certificate as a TLS server and as a client.
    [
        webpki::KeyUsage::server_auth(),
        webpki::KeyUsage::client_auth(),
    ]
    .into_iter()
    .any(|usage| {
        host.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            now,
            usage,
            None,
            None,
        )
        .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration() -> Registration {
        Registration {
            engine: EngineAddr::new("engine.example.com", 443).unwrap(),
            ca: CaFingerprints::of_der(b"ca"),
            unique_id: "4c4c4544-0042-3510-8052-b4c04f4a4d32".into(),
            name: Some("node1".into()),
            address: None,
            ssh_user: "root".into(),
            ssh_port: 22,
            ssh_key_fingerprint: Some("SHA256:abc".into()),
            vds_port: 54321,
            registered_at: 1_700_000_000,
        }
    }

    fn all_states() -> Vec<RegistrationState> {
        let engine = EngineAddr::new("engine.example.com", 8443).unwrap();
        let ca = CaFingerprints::of_der(b"ca");
        vec![
            RegistrationState::Unregistered,
            RegistrationState::TrustFetched {
                engine: engine.clone(),
                ca: ca.clone(),
                fetched_at: 1,
            },
            RegistrationState::AwaitingConfirmation {
                engine: engine.clone(),
                ca: ca.clone(),
                previous_ca: Some(CaFingerprints::of_der(b"old")),
                since: 2,
            },
            RegistrationState::Registered(registration()),
            RegistrationState::Managed {
                registration: registration(),
                managed_since: 3,
            },
            RegistrationState::Failed {
                engine,
                ca: Some(ca),
                attempts: 3,
                error_kind: ErrorKind::Unreachable,
                last_error: "cannot reach".into(),
                failed_at: 4,
                next_retry_at: 8,
            },
        ]
    }

    #[test]
    fn every_state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        assert_eq!(
            load_state(&root).unwrap().status,
            RegistrationState::Unregistered
        );
        for state in all_states() {
            save_state(&root, &state).unwrap();
            let loaded = load_state(&root).unwrap();
            assert_eq!(loaded.status, state);
            assert_eq!(loaded.api_version, API_VERSION);
            let raw: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(root.path(STATE_PATH)).unwrap())
                    .unwrap();
            assert_eq!(raw["status"]["state"], state.name());
        }
    }

    #[test]
    fn json_shape_is_stable() {
        let json = serde_json::to_value(RegistrationState::Registered(registration())).unwrap();
        assert_eq!(json["state"], "registered");
        assert_eq!(json["engine"]["host"], "engine.example.com");
        assert_eq!(json["uniqueId"], "4c4c4544-0042-3510-8052-b4c04f4a4d32");
        assert_eq!(json["vdsPort"], 54321);
        let managed = serde_json::to_value(RegistrationState::Managed {
            registration: registration(),
            managed_since: 9,
        })
        .unwrap();
        assert_eq!(managed["state"], "managed");
        assert_eq!(managed["managedSince"], 9);
        assert_eq!(managed["sshUser"], "root");
    }

    #[test]
    fn corrupt_or_foreign_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        std::fs::create_dir_all(root.path("/var/lib/hvnode")).unwrap();
        std::fs::write(root.path(STATE_PATH), "{not json").unwrap();
        assert!(matches!(load_state(&root), Err(Error::BadState { .. })));
        std::fs::write(
            root.path(STATE_PATH),
            r#"{"apiVersion":"other/v9","kind":"Registration","updatedAt":0,"status":{"state":"unregistered"}}"#,
        )
        .unwrap();
        assert!(matches!(load_state(&root), Err(Error::BadState { .. })));
    }

    #[test]
    fn current_state_of_a_fresh_node_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        let file = current_state(&root).unwrap();
        assert_eq!(file.status, RegistrationState::Unregistered);
        assert!(!root.path(STATE_PATH).exists());
    }

    #[test]
    fn no_or_unusable_host_certificate_is_not_managed() {
        let dir = tempfile::tempdir().unwrap();
        let root = Sysroot::new(dir.path());
        let registered = RegistrationState::Registered(registration());
        assert_eq!(refresh_managed(&root, registered.clone()), registered);
        std::fs::create_dir_all(root.path("/etc/pki/vdsm/certs")).unwrap();
        std::fs::write(root.path(MANAGED_CERT_PATH), "garbage").unwrap();
        assert_eq!(refresh_managed(&root, registered.clone()), registered);
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
        std::fs::write(root.path(MANAGED_CERT_PATH), pem).unwrap();
        assert_eq!(refresh_managed(&root, registered.clone()), registered);
        assert_eq!(
            refresh_managed(&root, RegistrationState::Unregistered),
            RegistrationState::Unregistered
        );
    }
}
