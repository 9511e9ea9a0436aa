//! Zero-touch registration: the engine named on the kernel command line or by the
//! kickstart, registered at boot and retried with capped backoff until it succeeds,
//! across reboots.

use std::time::Duration;

use serde::Serialize;

use crate::fsutil::read_optional;
use crate::{
    BACKOFF_CAP, BACKOFF_FLOOR, Client, EngineAddr, Error, ErrorKind, Fingerprint, RegisterOptions,
    RegistrationState, Result, Sysroot, Trust, backoff_delay, current_state, load_state, now_unix,
    random_jitter, register, save_state,
};

/// The installed node's zero-touch configuration, written by the installer from
/// `%addon org_hvnode_register`: `key=value` lines, `#` comments.
pub const ZERO_TOUCH_CONFIG_PATH: &str = "/etc/hvnode/registration.conf";
const CMDLINE_PATH: &str = "/proc/cmdline";

/// Where the zero-touch settings came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZeroTouchSource {
    /// `hvnode.engine=` on the kernel command line.
    KernelCommandLine,
    /// [`ZERO_TOUCH_CONFIG_PATH`].
    ConfigFile,
}

/// What zero-touch registration registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroTouch {
    /// The engine.
    pub engine: EngineAddr,
    /// The engine CA's fingerprint; without it the node waits for an administrator.
    pub fingerprint: Option<Fingerprint>,
    /// Display name in the engine.
    pub node_name: Option<String>,
    /// Address the engine reaches the node at.
    pub node_address: Option<String>,
    /// Where these came from.
    pub source: ZeroTouchSource,
}

/// Reads the zero-touch settings: kernel arguments `hvnode.engine=FQDN[:PORT]`,
/// `hvnode.engine_fingerprint=FP` (and `hvnode.node_name=`, `hvnode.node_address=`)
/// win over the configuration file's `engine=`, `engine_fingerprint=`, `node_name=`,
/// `node_address=`. `None` when neither names an engine.
pub fn zero_touch_config(sysroot: &Sysroot) -> Result<Option<ZeroTouch>> {
    let cmdline = read_optional(&sysroot.path(CMDLINE_PATH))?.unwrap_or_default();
    let from_kernel: Vec<(String, String)> = cmdline
        .split_whitespace()
        .filter_map(|arg| arg.strip_prefix("hvnode."))
        .filter_map(|arg| arg.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    if from_kernel.iter().any(|(k, _)| k == "engine") {
        return settings(&from_kernel, ZeroTouchSource::KernelCommandLine).map(Some);
    }
    let path = sysroot.path(ZERO_TOUCH_CONFIG_PATH);
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    let from_file: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    if !from_file.iter().any(|(k, _)| k == "engine") {
        return Ok(None);
    }
    settings(&from_file, ZeroTouchSource::ConfigFile).map(Some)
}

fn settings(pairs: &[(String, String)], source: ZeroTouchSource) -> Result<ZeroTouch> {
    // The last setting of a key wins, as with repeated kernel arguments.
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    let engine: EngineAddr = get("engine").unwrap_or_default().parse()?;
    let fingerprint = get("engine_fingerprint").map(|f| f.parse()).transpose()?;
    Ok(ZeroTouch {
        engine,
        fingerprint,
        node_name: get("node_name"),
        node_address: get("node_address"),
        source,
    })
}

/// How a zero-touch run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZeroTouchEnd {
    /// Registered (or managed) with the configured engine.
    Registered(RegistrationState),
    /// No fingerprint was configured: the CA was fetched and waits for an administrator.
    AwaitingConfirmation(RegistrationState),
}

/// Registers with `config.engine` until it succeeds, waiting between attempts with
/// capped exponential backoff and jitter. `wait` sleeps for the given time and returns
/// `false` to stop (the caller then gets the last error).
///
/// A node already registered, with this or any engine, returns at once: a registration
/// an administrator made by hand wins over the boot-time settings. The attempt count
/// carries over reboots (the backoff goes on growing); the first attempt after boot is
/// made at once, as the network may just have come up. Without a fingerprint, the CA
/// is fetched and the node is left awaiting an administrator's confirmation, unless a
/// CA was confirmed before.
pub fn register_until_done(
    sysroot: &Sysroot,
    config: &ZeroTouch,
    timeout: Duration,
    wait: &mut dyn FnMut(Duration, &Error) -> bool,
) -> Result<ZeroTouchEnd> {
    let mut options = RegisterOptions::new(config.engine.clone());
    options.node_name = config.node_name.clone();
    options.node_address = config.node_address.clone();
    options.timeout = timeout;

    let mut local_attempts = 0u32;
    loop {
        let state = current_state(sysroot)?.status;
        if state.registration().is_some() {
            return Ok(ZeroTouchEnd::Registered(state));
        }
        let confirmed = state.engine() == Some(&config.engine) && state.confirmed_ca().is_some();
        let result = match (config.fingerprint, confirmed) {
            (Some(fp), _) => register(sysroot, &options, Trust::Fingerprint(fp)).map(|o| o.state),
            (None, true) => register(sysroot, &options, Trust::Confirmed).map(|o| o.state),
            (None, false) => match await_confirmation(sysroot, &options) {
                Ok(state) => return Ok(ZeroTouchEnd::AwaitingConfirmation(state)),
                Err(e) => Err(e),
            },
        };
        let error = match result {
            Ok(state) => return Ok(ZeroTouchEnd::Registered(state)),
            Err(e) if e.kind() == ErrorKind::BadInput => return Err(e),
            Err(e) => e,
        };
        local_attempts = local_attempts.saturating_add(1);
        let delay = next_wait(sysroot, local_attempts)?;
        if !wait(delay, &error) {
            return Err(error);
        }
    }
}

/// The wait before the next attempt: until the `next_retry_at` the failed attempt
/// recorded, or, where nothing was recorded (a mismatch stores nothing), the backoff
/// for `local_attempts`.
fn next_wait(sysroot: &Sysroot, local_attempts: u32) -> Result<Duration> {
    let recorded = match load_state(sysroot)?.status {
        RegistrationState::Failed { next_retry_at, .. } => Some(Duration::from_secs(
            next_retry_at.saturating_sub(now_unix()),
        )),
        _ => None,
    };
    let delay = recorded.unwrap_or_else(|| backoff_delay(local_attempts, random_jitter()));
    Ok(delay.clamp(BACKOFF_FLOOR, BACKOFF_CAP))
}

/// Fetches the CA and leaves the node awaiting an administrator's confirmation.
fn await_confirmation(sysroot: &Sysroot, options: &RegisterOptions) -> Result<RegistrationState> {
    let ca = Client::unverified(&options.engine, options.timeout).get_pki_trust()?;
    let state = RegistrationState::AwaitingConfirmation {
        engine: options.engine.clone(),
        ca: ca.fingerprints,
        previous_ca: None,
        since: now_unix(),
    };
    save_state(sysroot, &state)?;
    Ok(state)
}
