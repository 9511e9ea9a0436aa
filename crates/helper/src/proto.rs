//! What a client may ask of the helper, and what it answers. Every request is a
//! closed, typed question; the helper decides it with its own rules (the PAM stack,
//! the admin groups, `disallowed_users`, the sudo policy), never the client's.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A password: sent as it is, never shown (`Debug` prints a placeholder), so that
/// a logged request cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(hidden)")
    }
}

/// A request, one per frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Checks a console login of `user` from `client` and, when it is good, opens
    /// the login's session (PAM: authenticate, account, credentials, session) and
    /// keeps it open for as long as this connection stays open. Answered
    /// [`Reply::LoggedIn`] or [`Reply::Refused`].
    Login {
        user: String,
        password: Password,
        /// The address the login came from (`PAM_RHOST`).
        client: IpAddr,
    },
    /// Checks `user`'s password and account as a login does, without opening a
    /// session (turning on administrative access asks for the password again).
    /// Answered [`Reply::Authenticated`] or [`Reply::Refused`].
    Authenticate { user: String, password: Password },
    /// Whether `user`'s sudo rules let them run every command as root, which
    /// administrative access needs. Answered [`Reply::Allowed`].
    MayAdminister { user: String },
    /// A login shell for the user of this connection's session, on a new terminal
    /// (pty) of `rows` × `cols`. Only on a session's connection: the helper, not
    /// the client, says whose shell it is. Answered [`Reply::Terminal`] with the
    /// terminal's controlling side passed along (`SCM_RIGHTS`); the shell ends when
    /// the client closes it, and at the latest when the session ends.
    OpenTerminal { rows: u16, cols: u16 },
    /// A VM's graphical display (its VNC server) or serial console, for the
    /// console to relay to the browser, on the same terms as [`Request::Change`].
    /// Answered [`Reply::VmConsole`] with a descriptor passed along: a socket
    /// connected to the VM's VNC server (its unix socket, or its loopback port),
    /// or the VM's serial console's pty; or [`Reply::Failed`].
    OpenVmConsole { vm: String, kind: VmConsoleKind },
    /// A change made as the user of this connection's session. Only on a session's
    /// connection, and only when the helper finds that user may administer the node
    /// (an admin group and sudo rules that allow every command as root, asked again
    /// once the last answer is a minute old). Answered [`Reply::Changed`] or
    /// [`Reply::Failed`].
    Change { change: Change },
    /// `nodectl update SOURCE --json`, checked (`apply: false`: the plan only) or
    /// applied (`--yes`), as the user of this connection's session, on the same
    /// terms as [`Request::Change`]. Answered [`Reply::Running`] with the read end
    /// of its output (standard output and error, one JSON object per line) passed
    /// along, or [`Reply::Failed`].
    RunUpdate { source: String, apply: bool },
    /// A step of a registration with an oVirt engine (`nodectl register --json`), as
    /// the user of this connection's session, on the same terms as
    /// [`Request::Change`]: it trusts a CA, installs the engine's SSH key for root and
    /// tells the engine this node's identity. Answered [`Reply::Running`] with the
    /// read end of nodectl's standard output passed along (one JSON document:
    /// `EngineCa`, `RegistrationResult` or `RegistrationError`), or
    /// [`Reply::Failed`].
    Register { step: RegisterStep },
    /// A diagnostic report (`nodectl diagnostics -o -`, run as root: the journal,
    /// libvirt's logs and the volumes are root's to read), for the user of this
    /// connection's session, on the same terms as [`Request::Change`]. Answered
    /// [`Reply::Running`] with the read end of nodectl's standard output passed
    /// along (the report, a gzip'd tar, ending when nodectl does), or
    /// [`Reply::Failed`].
    Diagnostics,
    /// The node's layer store as `nodectl info` reads it (volumes, layers, boot
    /// entries, trial history): read-only, on any connection. Reading LVM's and
    /// btrfs's views takes privileges the web process does not have. Answered
    /// [`Reply::LayerFacts`] or [`Reply::Error`].
    LayerFacts,
    /// The node's LVM thin pools and how full they are: read-only, on any
    /// connection. Answered [`Reply::ThinPools`] or [`Reply::Error`].
    ThinPools,
    /// What oVirt Engine asked of the node through its link (hvnode-vdsm, which
    /// checked the engine's client certificate). Served only to the engine link's
    /// user (the helper's `--engine-user`, on its own socket), which may ask
    /// nothing else. Answered [`Reply::Changed`] or [`Reply::Failed`].
    Engine { action: EngineAction },
    /// The facts the engine asks for that only root may read: the firmware's
    /// serial number and system UUID, the CPU models libvirt offers guests here.
    /// Served only to the engine link's user, as [`Request::Engine`]. Answered
    /// [`Reply::EngineFacts`] or [`Reply::Error`].
    EngineFacts,
}

/// What [`Request::EngineFacts`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineFacts {
    /// DMI's `product_serial` (readable by root only), when the firmware gives
    /// one.
    pub system_serial: Option<String>,
    /// DMI's `product_uuid` (readable by root only), when the firmware gives one.
    pub system_uuid: Option<String>,
    /// The CPU models libvirt finds usable for guests on this host (its domain
    /// capabilities, which it answers on a read-write connection only); empty
    /// when libvirt could not say.
    pub cpu_models: Vec<String>,
}

/// What [`Request::Engine`] does: the engine's VM verbs that change a VM. VMs are
/// named by their libvirt UUID, as the engine names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EngineAction {
    /// `VM.destroy`: the VM is powered off at once.
    VmDestroy { vm_id: String },
    /// `VM.shutdown`: the guest is asked to shut down (ACPI), or to reboot.
    VmShutdown { vm_id: String, reboot: bool },
    /// `Host.setMOMPolicyParameters`' memory sharing: the kernel's same-page
    /// merging (KSM) on or off, and whether it merges pages of different NUMA
    /// nodes (changed only when given).
    Ksm {
        enabled: bool,
        merge_across_nodes: Option<bool>,
    },
    /// `Host.setupNetworks`: the engine's networks changed (checked again by the
    /// helper), their systemd-networkd files written and taken up; the networks
    /// before are kept until [`EngineAction::CommitNetworks`] or
    /// [`EngineAction::RollbackNetworks`].
    SetupNetworks { changes: Vec<netconf::Change> },
    /// The engine did not confirm the change (its connectivity check): the
    /// running networks back to those before it.
    RollbackNetworks,
    /// `Host.setSafeNetworkConfig` (or `commitOnSuccess`): the running networks
    /// become those a boot starts with.
    CommitNetworks,
}

/// What [`Request::Change`] changes. Names and actions are checked by the helper,
/// which knows the valid ones; the client's checks are only for its own messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    /// A virtual machine's power: `start`, `shutdown`, `force-off`, `reboot`,
    /// `pause`, `resume`.
    Vm { name: String, action: String },
    /// A systemd unit: `start`, `stop`, `restart`, `enable`, `disable`.
    Unit { unit: String, action: String },
    /// Boot `layer` (a layer of the node's store) at the next boot only (grub's
    /// `next_entry`).
    BootNext { layer: String },
    /// Make the layer before the default the default again (`nodectl rollback`).
    Rollback,
    /// A new VM: its disk a new volume in a storage pool, confined by sVirt as
    /// every VM is.
    VmCreate { spec: VmSpec },
    /// A VM's vCPUs, memory or autostart, in its definition and, where libvirt
    /// allows, live.
    VmEdit { name: String, edit: VmEdit },
    /// A VM forced off if it runs, then undefined; with `storage`, its disks'
    /// volumes deleted too.
    VmDelete { name: String, storage: bool },
    /// A VM's snapshot: `create` (with `description`), `revert` or `delete`.
    Snapshot {
        vm: String,
        snapshot: String,
        action: String,
        description: Option<String>,
    },
    /// A new directory storage pool at `path`, built, started and set to start
    /// with the host.
    PoolCreate { name: String, path: String },
    /// A storage pool's `start` or `stop`.
    Pool { name: String, action: String },
    /// A virtual network's `start` or `stop`.
    Network { name: String, action: String },
}

/// Which of a VM's consoles [`Request::OpenVmConsole`] opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VmConsoleKind {
    /// The graphical display: the VNC server's socket (RFB).
    Vnc,
    /// The first serial console: its pty.
    Serial,
}

/// What a new VM is made of (`POST /api/v1/vms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSpec {
    pub name: String,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// The size of its new disk, a qcow2 volume in `pool`.
    pub disk_gib: u64,
    pub pool: String,
    /// A libvirt virtual network, or a bridge of the host.
    pub network: String,
    /// `bios`, `uefi` or `uefi-secure-boot`.
    pub firmware: String,
    /// An installation medium: a path on the node, or `POOL/VOLUME`.
    #[serde(default)]
    pub iso: Option<String>,
    /// Start it once defined (to boot the medium).
    #[serde(default)]
    pub start: bool,
}

/// What [`Change::VmEdit`] changes; each field left out stays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmEdit {
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub memory_mib: Option<u64>,
    #[serde(default)]
    pub autostart: Option<bool>,
}

/// Why a change was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A name or action that is not valid.
    Invalid,
    /// What it names does not exist.
    NotFound,
    /// The node's state does not allow it (a layer action on a node that does not
    /// run from a layered root, nothing to roll back to).
    Conflict,
    /// The session's user may not administer the node, or the request is not
    /// allowed on this connection.
    NotAllowed,
    /// What makes the change (libvirtd, systemd) cannot be reached.
    Unavailable,
    /// It was tried and failed.
    Failed,
}

/// A change that was not made, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(deny_unknown_fields)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// What [`Request::Register`] does. The helper checks every field before nodectl
/// sees it (an engine name or address and a port, a fingerprint's form, node names
/// without control characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum RegisterStep {
    /// Fetch the engine's CA without trusting it, to show its fingerprints; with
    /// `fingerprint`, check that it has that one (`nodectl register --fetch-ca`).
    FetchCa {
        engine: String,
        port: u16,
        fingerprint: Option<String>,
    },
    /// Register, trusting the engine's CA only if it has `fingerprint` (the one the
    /// administrator confirmed); a registration the node has is replaced.
    Register {
        engine: String,
        port: u16,
        fingerprint: String,
        node_name: Option<String>,
        node_address: Option<String>,
    },
}

impl Request {
    /// The request's name, for logs and errors (no arguments: they may be secret).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Login { .. } => "login",
            Self::Authenticate { .. } => "authenticate",
            Self::MayAdminister { .. } => "may_administer",
            Self::OpenTerminal { .. } => "open_terminal",
            Self::OpenVmConsole { .. } => "open_vm_console",
            Self::Change { .. } => "change",
            Self::RunUpdate { .. } => "run_update",
            Self::Register { .. } => "register",
            Self::Diagnostics => "diagnostics",
            Self::LayerFacts => "layer_facts",
            Self::ThinPools => "thin_pools",
            Self::Engine { .. } => "engine",
            Self::EngineFacts => "engine_facts",
        }
    }
}

/// An answer, one per request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reply {
    /// The login is good; this connection now holds its session.
    LoggedIn,
    /// The password and the account are good ([`Request::Authenticate`]).
    Authenticated,
    /// The login was refused, and why (the client must not show the reason to the
    /// person logging in: every refusal looks like a wrong password there).
    Refused { refusal: Refusal },
    /// The answer to [`Request::MayAdminister`].
    Allowed { allowed: bool },
    /// The shell of [`Request::OpenTerminal`] started as process `pid`; its
    /// terminal's descriptor came with this frame.
    Terminal { pid: u32 },
    /// The VM console of [`Request::OpenVmConsole`]; its descriptor came with this
    /// frame.
    VmConsole,
    /// The change of [`Request::Change`] (or the action of [`Request::Engine`]) is
    /// made.
    Changed,
    /// The change of [`Request::Change`] (or the action of [`Request::Engine`], or
    /// the run of [`Request::RunUpdate`] or [`Request::Register`]) was not made.
    Failed { failure: Failure },
    /// The update of [`Request::RunUpdate`] (or the nodectl of
    /// [`Request::Register`] or [`Request::Diagnostics`]) runs as process `pid`;
    /// its output's read end came with this frame, and ends when it does.
    Running { pid: u32 },
    /// The answer to [`Request::LayerFacts`].
    LayerFacts { facts: Box<layers::status::Facts> },
    /// The answer to [`Request::ThinPools`].
    ThinPools { pools: Vec<hostinfo::ThinPool> },
    /// The answer to [`Request::EngineFacts`].
    EngineFacts { facts: EngineFacts },
    /// The request could not be served (malformed, not allowed on this connection,
    /// the helper's own failure); what to do is in the message.
    Error { message: String },
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Refusal {
    /// Wrong user name or password (PAM does not say which).
    #[error("wrong user name or password")]
    BadCredentials,
    /// Not root and in none of the admin groups; the password was not checked.
    #[error("not root and not in an admin group ({groups})")]
    NotAdmin { groups: String },
    /// In `disallowed_users`; the password was not checked.
    #[error("the account is in disallowed_users and may not log in to the console")]
    Disallowed,
    /// Locked, expired, or refused by PAM's account management.
    #[error("the account may not log in: {why}")]
    AccountRefused { why: String },
    /// PAM could not be used (missing service file, broken module).
    #[error("PAM service {service}: {why}")]
    Pam { service: String, why: String },
    /// The check could not be run (no thread, the helper is shutting down).
    #[error("{why}")]
    Unavailable { why: String },
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn requests_and_replies_have_a_stable_wire_form() {
        let login = Request::Login {
            user: "admin".into(),
            password: Password("s3cret".into()),
            client: "192.0.2.7".parse().unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&login).unwrap(),
            r#"{"request":"login","user":"admin","password":"s3cret","client":"192.0.2.7"}"#
        );
        let refused = Reply::Refused {
            refusal: Refusal::NotAdmin {
                groups: "sudo, wheel".into(),
            },
        };
        assert_eq!(
            serde_json::to_string(&refused).unwrap(),
            r#"{"reply":"refused","refusal":{"kind":"not_admin","groups":"sudo, wheel"}}"#
        );
    }

    #[test]
    fn engine_actions_have_a_stable_wire_form() {
        let destroy = Request::Engine {
            action: EngineAction::VmShutdown {
                vm_id: "6f5c1e2a-0001-4002-8003-000000000042".into(),
                reboot: false,
            },
        };
        assert_eq!(
            serde_json::to_string(&destroy).unwrap(),
            r#"{"request":"engine","action":{"kind":"vm_shutdown","vm_id":"6f5c1e2a-0001-4002-8003-000000000042","reboot":false}}"#
        );
        assert!(
            serde_json::from_str::<Request>(
                r#"{"request":"engine","action":{"kind":"vm_start","vm_id":"x"}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn a_password_is_never_shown() {
        let login = Request::Login {
            user: "admin".into(),
            password: Password("s3cret".into()),
            client: "::1".parse().unwrap(),
        };
        let shown = format!("{login:?} {login:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("admin"));
    }

    #[test]
    fn unknown_requests_and_extra_fields_are_refused() {
        for text in [
            r#"{"request":"run","argv":["/bin/sh"]}"#,
            r#"{"request":"may_administer","user":"a","as":"root"}"#,
            r#"{"request":"login","user":"a","password":"b"}"#,
        ] {
            assert!(serde_json::from_str::<Request>(text).is_err(), "{text}");
        }
    }
}
