//! Registration of an hvnode host with an oVirt / RHV engine.
//!
//! This crate speaks the engine's host-register protocol, version 1 (see
//! `shared/protocols/ovirt-host-register.md` in the project's design notes):
//!
//! 1. fetch the engine's CA without TLS verification ([`Client::unverified`]),
//! 2. show its SHA-256 and SHA-1 fingerprints ([`CaFingerprints`]) and have an
//!    administrator confirm one ([`Fingerprint`]),
//! 3. store the CA and verify every later request against it, host name included,
//! 4. install the engine's SSH key for the SSH user ([`install_authorized_key`]),
//! 5. send `register` with the node's unique id ([`unique_id`]) and the fingerprint of
//!    its own SSH host key ([`host_key_fingerprint`]).
//!
//! The node's progress is one persisted state machine ([`RegistrationState`]) stored as
//! JSON under `SYSROOT/var/lib/hvnode/registration.json`. Every file this crate reads or
//! writes on the node is reached through a [`Sysroot`], so tests run against a scratch
//! tree.

mod backoff;
mod client;
mod error;
mod fingerprint;
mod flow;
mod fsutil;
mod sshkey;
mod state;
mod sysroot;
mod uniqueid;
mod zerotouch;

pub use backoff::{BACKOFF_CAP, BACKOFF_FLOOR, backoff_delay, random_jitter};
pub use client::{Client, DEFAULT_TIMEOUT, EngineAddr, FetchedCa, RegisterParams, engine_message};
pub use error::{Error, ErrorKind, ErrorReport};
pub use fingerprint::{CaFingerprints, Fingerprint};
pub use flow::{
    CaToConfirm, Confirmation, LOCK_PATH, RegisterOptions, RegisterOutcome, Trust,
    fetch_ca_to_confirm, register,
};
pub use sshkey::{
    AuthorizedKeyChange, SshPublicKey, SshUser, host_key_fingerprint, install_authorized_key,
};
pub use state::{
    API_VERSION, CA_PATH, MANAGED_CERT_PATH, Registration, RegistrationState, STATE_PATH,
    StateFile, current_state, load_state, now_unix, refresh_managed, save_state,
};
pub use sysroot::Sysroot;
pub use uniqueid::{IdSource, UniqueId, is_bogus_uuid, unique_id};
pub use zerotouch::{
    ZERO_TOUCH_CONFIG_PATH, ZeroTouch, ZeroTouchEnd, ZeroTouchSource, register_until_done,
    zero_touch_config,
};

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
