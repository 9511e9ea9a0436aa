//! One registration, start to end: fetch and confirm the CA, then talk to the engine
//! only over verified TLS, install its SSH key, and register.

use std::fs;
use std::io::ErrorKind as IoKind;
use std::time::Duration;

use serde::Serialize;

use crate::fsutil::{read_optional, write_atomic};
use crate::{
    AuthorizedKeyChange, CA_PATH, CaFingerprints, Client, EngineAddr, Error, FetchedCa,
    Fingerprint, RegisterParams, Registration, RegistrationState, Result, STATE_PATH, SshUser,
    Sysroot, UniqueId, backoff_delay, host_key_fingerprint, install_authorized_key, now_unix,
    random_jitter, refresh_managed, save_state, unique_id,
};

/// Held while a registration runs, so that the boot-time service and an administrator
/// do not register at the same time.
pub const LOCK_PATH: &str = "/run/hvnode/registration.lock";

/// What to register and where.
#[derive(Debug, Clone)]
pub struct RegisterOptions {
    /// The engine.
    pub engine: EngineAddr,
    /// Display name in the engine (`name`); the engine uses the address when `None`.
    pub node_name: Option<String>,
    /// Address the engine uses to reach the node (`address`); the engine uses the
    /// requester's reverse DNS when `None`.
    pub node_address: Option<String>,
    /// User the engine logs in as (`sshUser`).
    pub ssh_user: String,
    /// SSH port (`sshPort`).
    pub ssh_port: u16,
    /// VDSM port (`vdsPort`).
    pub vds_port: u16,
    /// Limit for each request to the engine.
    pub timeout: Duration,
}

impl RegisterOptions {
    /// Options with the protocol's defaults: user root, SSH port 22, VDSM port 54321.
    pub fn new(engine: EngineAddr) -> Self {
        Self {
            engine,
            node_name: None,
            node_address: None,
            ssh_user: "root".into(),
            ssh_port: 22,
            vds_port: 54321,
            timeout: crate::DEFAULT_TIMEOUT,
        }
    }
}

/// What an administrator is asked to confirm.
#[derive(Debug, Clone)]
pub struct Confirmation<'a> {
    /// The engine.
    pub engine: &'a EngineAddr,
    /// Fingerprints of the CA it served.
    pub ca: &'a CaFingerprints,
    /// The CA confirmed at the last registration with this engine, when it differs.
    pub previous: Option<&'a CaFingerprints>,
}

/// How the engine's CA gets confirmed.
pub enum Trust<'a> {
    /// A fingerprint given in advance (command line, kickstart, kernel argument); a
    /// mismatch is an error and nothing is stored.
    Fingerprint(Fingerprint),
    /// Ask someone, unless the CA is the one confirmed at the last registration with
    /// this engine; `true` confirms.
    Ask(&'a mut dyn FnMut(&Confirmation<'_>) -> bool),
    /// Only the CA confirmed at the last registration with this engine is accepted
    /// (unattended retries); a changed CA is [`Error::CaChanged`].
    Confirmed,
}

impl std::fmt::Debug for Trust<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fingerprint(fp) => write!(f, "Fingerprint({fp})"),
            Self::Ask(_) => f.write_str("Ask"),
            Self::Confirmed => f.write_str("Confirmed"),
        }
    }
}

/// What a successful registration did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterOutcome {
    /// The new state (`registered`, or `managed` when the host certificate is there).
    pub state: RegistrationState,
    /// The unique id sent, and where it came from.
    pub unique_id: UniqueId,
    /// How the CA was confirmed: `fingerprint`, `administrator` or `earlier-registration`.
    pub ca_confirmed_by: &'static str,
    /// What happened to `authorized_keys`.
    pub authorized_key: AuthorizedKeyChange,
    /// Fingerprint of the engine's SSH key that was installed.
    pub engine_ssh_key: String,
}

/// Registers the node under `sysroot` with `options.engine`, recording every step in the
/// persisted state.
///
/// A fingerprint mismatch, a declined or missing confirmation leave the node as it was.
/// Other failures after the first request are recorded as `failed` with the attempt
/// count and the next retry time, except that a node already registered with this
/// engine keeps its registration.
pub fn register(
    sysroot: &Sysroot,
    options: &RegisterOptions,
    trust: Trust<'_>,
) -> Result<RegisterOutcome> {
    let mut lock = open_lock(sysroot)?;
    let _guard = try_lock(&mut lock, sysroot)?;

    let state_path = sysroot.path(STATE_PATH);
    let previous_file = read_optional(&state_path)?;
    let previous = crate::load_state(sysroot)?.status;
    let same_engine = previous.engine() == Some(&options.engine);
    let previous_ca = previous.confirmed_ca().filter(|_| same_engine).cloned();
    let record = |ca: Option<&CaFingerprints>, error: Error| {
        record_failure(sysroot, &previous, options, ca, error)
    };

    let fetched = match Client::unverified(&options.engine, options.timeout).get_pki_trust() {
        Ok(ca) => ca,
        Err(e) => return Err(record(previous_ca.as_ref(), e)),
    };
    let unchanged = previous_ca.as_ref() == Some(&fetched.fingerprints);
    let confirmed_by = match trust {
        Trust::Fingerprint(fp) if fp.matches(&fetched.der) => "fingerprint",
        Trust::Fingerprint(fp) => {
            return Err(Error::FingerprintMismatch {
                expected: fp.to_string(),
                sha256: fetched.fingerprints.sha256.clone(),
                sha1: fetched.fingerprints.sha1.clone(),
            });
        }
        Trust::Ask(_) | Trust::Confirmed if unchanged => "earlier-registration",
        Trust::Ask(ask) => {
            let changed_from = previous_ca.as_ref();
            save_state(
                sysroot,
                &RegistrationState::AwaitingConfirmation {
                    engine: options.engine.clone(),
                    ca: fetched.fingerprints.clone(),
                    previous_ca: changed_from.cloned(),
                    since: now_unix(),
                },
            )?;
            let question = Confirmation {
                engine: &options.engine,
                ca: &fetched.fingerprints,
                previous: changed_from,
            };
            if !ask(&question) {
                restore_file(&state_path, previous_file.as_deref())?;
                return Err(Error::Declined);
            }
            "administrator"
        }
        Trust::Confirmed => match &previous_ca {
            Some(old) => {
                let error = Error::CaChanged {
                    old: old.sha256.clone(),
                    new: fetched.fingerprints.sha256.clone(),
                };
                return Err(record(previous_ca.as_ref(), error));
            }
            None => return Err(Error::ConfirmationRequired),
        },
    };

    match register_trusted(sysroot, options, &fetched) {
        Ok((registration, unique_id, authorized_key, engine_ssh_key)) => {
            let state = refresh_managed(sysroot, RegistrationState::Registered(registration));
            save_state(sysroot, &state)?;
            Ok(RegisterOutcome {
                state,
                unique_id,
                ca_confirmed_by: confirmed_by,
                authorized_key,
                engine_ssh_key,
            })
        }
        Err(e) => Err(record(Some(&fetched.fingerprints), e)),
    }
}

/// Opens (creating it) the file a registration holds locked while it runs.
fn open_lock(sysroot: &Sysroot) -> Result<fd_lock::RwLock<fs::File>> {
    let lock_path = sysroot.path(LOCK_PATH);
    if let Some(dir) = lock_path.parent() {
        crate::fsutil::create_dir_all(dir)?;
    }
    let lock_file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::io("opening", &lock_path, e))?;
    Ok(fd_lock::RwLock::new(lock_file))
}

/// Takes the registration lock, or says that another registration is running.
fn try_lock<'a>(
    lock: &'a mut fd_lock::RwLock<fs::File>,
    sysroot: &Sysroot,
) -> Result<fd_lock::RwLockWriteGuard<'a, fs::File>> {
    match lock.try_write() {
        Ok(guard) => Ok(guard),
        Err(e) if e.kind() == IoKind::WouldBlock => Err(Error::Busy),
        Err(e) => Err(Error::io("locking", &sysroot.path(LOCK_PATH), e)),
    }
}

/// The engine's CA as fetched for an administrator to look at, before anyone trusts it.
#[derive(Debug, Clone)]
pub struct CaToConfirm {
    /// The certificate and its fingerprints.
    pub ca: FetchedCa,
    /// The CA confirmed at the last registration with this engine, when the engine
    /// now serves another one.
    pub previous: Option<CaFingerprints>,
}

/// The first half of a registration confirmed by someone who is not at a terminal (the
/// console): fetches the engine's CA without trusting it, so that its fingerprints can
/// be shown, and records `awaiting-confirmation`. The second half is [`register`] with
/// [`Trust::Fingerprint`] of the fingerprint shown, which fetches the CA again and
/// refuses it if it changed in between.
///
/// A fingerprint the administrator already has (`expected`) is checked at once: a
/// mismatch is [`Error::FingerprintMismatch`].
///
/// Nothing is trusted or stored but the state, and a node that is registered stays
/// registered: its registration is replaced only when a new one succeeds. A failed
/// fetch or a mismatch records nothing.
pub fn fetch_ca_to_confirm(
    sysroot: &Sysroot,
    engine: &EngineAddr,
    expected: Option<&Fingerprint>,
    timeout: Duration,
) -> Result<CaToConfirm> {
    let mut lock = open_lock(sysroot)?;
    let _guard = try_lock(&mut lock, sysroot)?;
    let current = crate::load_state(sysroot)?.status;
    let ca = Client::unverified(engine, timeout).get_pki_trust()?;
    if let Some(fp) = expected.filter(|fp| !fp.matches(&ca.der)) {
        return Err(Error::FingerprintMismatch {
            expected: fp.to_string(),
            sha256: ca.fingerprints.sha256.clone(),
            sha1: ca.fingerprints.sha1.clone(),
        });
    }
    let previous = current
        .confirmed_ca()
        .filter(|old| current.engine() == Some(engine) && **old != ca.fingerprints)
        .cloned();
    if current.registration().is_none() {
        save_state(
            sysroot,
            &RegistrationState::AwaitingConfirmation {
                engine: engine.clone(),
                ca: ca.fingerprints.clone(),
                previous_ca: previous.clone(),
                since: now_unix(),
            },
        )?;
    }
    Ok(CaToConfirm { ca, previous })
}

/// The steps after the CA is confirmed; every request is verified against it.
fn register_trusted(
    sysroot: &Sysroot,
    options: &RegisterOptions,
    ca: &FetchedCa,
) -> Result<(Registration, UniqueId, AuthorizedKeyChange, String)> {
    let user = SshUser::lookup(sysroot, &options.ssh_user)?;
    let client = Client::verified(&options.engine, &ca.der, options.timeout);
    let version = client.get_version()?;
    if version < 1 {
        return Err(Error::UnexpectedAnswer {
            command: "get-version".into(),
            detail: format!("the engine speaks protocol version {version}, this node speaks 1"),
        });
    }
    let engine_key = client.get_ssh_trust()?;

    write_atomic(&sysroot.path(CA_PATH), ca.pem.as_bytes(), 0o644, None)?;
    let id = unique_id(sysroot)?;
    let host_key = host_key_fingerprint(sysroot)?;
    let authorized_key = install_authorized_key(sysroot, &user, &engine_key)?;

    let params = RegisterParams {
        unique_id: id.id.clone(),
        address: options.node_address.clone(),
        name: options.node_name.clone(),
        ssh_user: Some(options.ssh_user.clone()),
        ssh_port: Some(options.ssh_port),
        ssh_key_fingerprint: host_key.clone(),
        vds_port: Some(options.vds_port),
    };
    client.register(&params)?;
    let registration = Registration {
        engine: options.engine.clone(),
        ca: ca.fingerprints.clone(),
        unique_id: id.id.clone(),
        name: options.node_name.clone(),
        address: options.node_address.clone(),
        ssh_user: options.ssh_user.clone(),
        ssh_port: options.ssh_port,
        ssh_key_fingerprint: host_key,
        vds_port: options.vds_port,
        registered_at: now_unix(),
    };
    Ok((registration, id, authorized_key, engine_key.fingerprint()))
}

/// Records a failed attempt (unless the node is already registered with this engine)
/// and hands the error back.
fn record_failure(
    sysroot: &Sysroot,
    previous: &RegistrationState,
    options: &RegisterOptions,
    ca: Option<&CaFingerprints>,
    error: Error,
) -> Error {
    if previous.registration().is_some() && previous.engine() == Some(&options.engine) {
        return error;
    }
    let attempts = match previous {
        RegistrationState::Failed {
            engine, attempts, ..
        } if *engine == options.engine => attempts.saturating_add(1),
        _ => 1,
    };
    let now = now_unix();
    let failed = RegistrationState::Failed {
        engine: options.engine.clone(),
        ca: ca.cloned(),
        attempts,
        error_kind: error.kind(),
        last_error: error.to_string(),
        failed_at: now,
        next_retry_at: now + backoff_delay(attempts, random_jitter()).as_secs(),
    };
    // The registration error matters more than a failure to record it.
    let _ = save_state(sysroot, &failed);
    error
}

/// Puts the state file back as it was: its old bytes, or no file.
fn restore_file(path: &std::path::Path, previous: Option<&str>) -> Result<()> {
    match previous {
        Some(text) => write_atomic(path, text.as_bytes(), 0o644, None),
        None => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == IoKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("removing", path, e)),
        },
    }
}
