//! Logins and sudo questions across the privilege boundary ([`helper`]).
//!
//! The web side asks with [`Remote`], an [`Authenticator`] and [`AdminPolicy`] that
//! sends each question to the privileged helper: the process that parses the network
//! never reads `/etc/shadow`, never holds a PAM handle and never runs sudo. The
//! helper answers with [`PamBackend`]: PAM ([`Pam`]) and sudo ([`Sudo`]) as the
//! console used them in-process, with `disallowed_users` enforced again on its side,
//! since it trusts no decision of the web process.
//!
//! Timing: the helper answers as soon as it knows; refusals that need holding back
//! to look like a wrong password are held back by the web side ([`super::check`],
//! [`crate::admin::AdminCheck`]), with PAM's delay, as before.

use std::net::IpAddr;

use helper::{Backend, Client, Refusal};

use super::{AuthError, Authenticator, LoginSession, Pam};
use crate::sudo::{AdminPolicy, PolicyError, Sudo};

/// The web side's authenticator and sudo policy: the privileged helper at a socket.
#[derive(Debug, Clone)]
pub struct Remote {
    client: Client,
}

impl Remote {
    /// Asks the helper listening at `socket`.
    pub fn new(socket: impl Into<std::path::PathBuf>) -> Self {
        Self {
            client: Client::new(socket),
        }
    }
}

/// What the web side makes of the helper's refusal of `user`.
fn auth_error(user: &str, refusal: Refusal) -> AuthError {
    match refusal {
        Refusal::BadCredentials => AuthError::BadCredentials,
        Refusal::NotAdmin { groups } => AuthError::NotAdmin(user.to_string(), groups),
        Refusal::Disallowed => AuthError::Disallowed(user.to_string()),
        Refusal::AccountRefused { why } => AuthError::AccountRefused(user.to_string(), why),
        Refusal::Pam { service, why } => AuthError::Pam(service, why),
        Refusal::Unavailable { why } => AuthError::Unavailable(why),
    }
}

/// What the helper tells the web side of a refusal.
fn refusal(e: AuthError) -> Refusal {
    match e {
        AuthError::BadCredentials => Refusal::BadCredentials,
        AuthError::NotAdmin(_, groups) => Refusal::NotAdmin { groups },
        AuthError::Disallowed(_) => Refusal::Disallowed,
        AuthError::AccountRefused(_, why) => Refusal::AccountRefused { why },
        AuthError::Pam(service, why) => Refusal::Pam { service, why },
        AuthError::Unavailable(why) => Refusal::Unavailable { why },
        e @ (AuthError::NotSudoer(_) | AuthError::Policy(_)) => {
            Refusal::Unavailable { why: e.to_string() }
        }
    }
}

impl Authenticator for Remote {
    fn authenticate(&self, user: &str, password: &str) -> Result<(), AuthError> {
        match self.client.authenticate(user, password) {
            Ok(answer) => answer.map_err(|r| auth_error(user, r)),
            Err(e) => Err(AuthError::Unavailable(e.to_string())),
        }
    }

    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<LoginSession, AuthError> {
        match self.client.login(user, password, client) {
            Ok(Ok(held)) => Ok(LoginSession::held_by_helper(held)),
            Ok(Err(r)) => Err(auth_error(user, r)),
            Err(e) => Err(AuthError::Unavailable(e.to_string())),
        }
    }
}

impl AdminPolicy for Remote {
    fn allows(&self, user: &str) -> Result<bool, PolicyError> {
        self.client
            .may_administer(user)
            .map_err(|e| PolicyError::Helper {
                user: user.to_string(),
                message: e.to_string(),
            })
    }
}

/// The helper's side: PAM logins and sessions for root and the admin groups, except
/// `disallowed`, and sudo's policy.
#[derive(Debug, Clone)]
pub struct PamBackend {
    pub pam: Pam,
    /// Accounts that may never log in (`disallowed_users` of agent.toml).
    pub disallowed: Vec<String>,
    pub sudo: Sudo,
    /// The libvirt connection VM changes are made on.
    pub libvirt: std::sync::Arc<crate::vms::Libvirt>,
    /// The `nodectl` that registrations and diagnostic reports run.
    pub nodectl: std::path::PathBuf,
    /// The root of the tree registrations write (`sysroot` of agent.toml).
    pub sysroot: std::path::PathBuf,
}

impl PamBackend {
    /// The backend for the console's settings.
    pub fn from_config(config: &crate::Config) -> Self {
        Self {
            pam: Pam {
                service: config.pam_service.clone(),
                admin_groups: config.admin_groups.clone(),
            },
            disallowed: config.disallowed_users.clone(),
            sudo: Sudo::default(),
            libvirt: std::sync::Arc::new(crate::vms::Libvirt::new(&config.libvirt_uri)),
            nodectl: config.nodectl.clone(),
            sysroot: config.sysroot.clone(),
        }
    }

    fn allowed(&self, user: &str) -> Result<(), Refusal> {
        if self.disallowed.iter().any(|d| d == user) {
            return Err(Refusal::Disallowed);
        }
        Ok(())
    }
}

impl Backend for PamBackend {
    type Session = LoginSession;

    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<LoginSession, Refusal> {
        self.allowed(user)?;
        self.pam.login(user, password, client).map_err(refusal)
    }

    fn authenticate(&self, user: &str, password: &str) -> Result<(), Refusal> {
        self.allowed(user)?;
        self.pam.authenticate(user, password).map_err(refusal)
    }

    /// An admin group and sudo rules that allow every command as root.
    fn may_administer(&self, user: &str) -> Result<bool, String> {
        if !super::is_admin(user, &self.pam.admin_groups) {
            return Ok(false);
        }
        self.sudo.allows(user).map_err(|e| e.to_string())
    }

    fn change(&self, _user: &str, change: &helper::Change) -> Result<(), helper::Failure> {
        crate::privileged::make_here(&self.libvirt, change)
    }

    fn open_vm_console(
        &self,
        _user: &str,
        vm: &str,
        kind: helper::VmConsoleKind,
    ) -> Result<std::os::fd::OwnedFd, helper::Failure> {
        crate::vm_console::open_here(&self.libvirt, vm, kind)
    }

    fn engine(&self, action: &helper::EngineAction) -> Result<(), helper::Failure> {
        crate::privileged::engine_here(&self.libvirt, action)
    }

    fn engine_facts(&self) -> Result<helper::EngineFacts, String> {
        Ok(crate::privileged::engine_facts_here(
            &self.libvirt,
            &self.sysroot,
        ))
    }

    fn run_update(
        &self,
        _user: &str,
        source: &str,
        apply: bool,
    ) -> Result<(std::os::fd::OwnedFd, std::process::Child), helper::Failure> {
        crate::node_update::spawn(crate::node_update::NODECTL.as_ref(), source, apply)
            .map_err(helper::Failure::from)
    }

    fn register(
        &self,
        _user: &str,
        step: &helper::RegisterStep,
    ) -> Result<(std::os::fd::OwnedFd, std::process::Child), helper::Failure> {
        crate::register_run::spawn(&self.nodectl, &self.sysroot, step)
    }

    fn diagnostics(
        &self,
        _user: &str,
    ) -> Result<(std::os::fd::OwnedFd, std::process::Child), helper::Failure> {
        crate::diagnostics::spawn(&self.nodectl)
    }

    fn open_terminal(
        &self,
        user: &str,
        rows: u16,
        cols: u16,
    ) -> Result<helper::server::Terminal, String> {
        crate::terminal::open_login_shell(user, rows, cols)
    }

    /// Read here, by root: what the web process asks for with [`Reader`].
    ///
    /// [`Reader`]: crate::facts::Reader
    fn layer_facts(&self) -> Result<layers::status::Facts, String> {
        crate::facts::Reader::new(None).layer_facts()
    }

    fn thin_pools(&self) -> Result<Vec<hostinfo::ThinPool>, String> {
        crate::facts::Reader::new(None).thin_pools()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_cross_the_boundary_and_come_back_the_same() {
        for e in [
            AuthError::BadCredentials,
            AuthError::NotAdmin("ops".into(), "sudo, wheel".into()),
            AuthError::Disallowed("ops".into()),
            AuthError::AccountRefused("ops".into(), "locked".into()),
            AuthError::Pam("hvnode".into(), "no such service".into()),
            AuthError::Unavailable("no thread".into()),
        ] {
            assert_eq!(auth_error("ops", refusal(e.clone())), e);
        }
    }

    #[test]
    fn disallowed_users_are_refused_by_the_helper_without_pam() {
        let backend = PamBackend {
            pam: Pam {
                service: "no-such-service-hvnode-test".into(),
                admin_groups: vec![],
            },
            disallowed: vec!["root".into()],
            sudo: Sudo::default(),
            libvirt: std::sync::Arc::new(crate::vms::Libvirt::new("test:///default")),
            nodectl: crate::node_update::NODECTL.into(),
            sysroot: "/".into(),
        };
        assert_eq!(
            backend
                .login("root", "pw", IpAddr::from([127, 0, 0, 1]))
                .err(),
            Some(Refusal::Disallowed)
        );
        assert_eq!(backend.authenticate("root", "pw"), Err(Refusal::Disallowed));
    }
}
