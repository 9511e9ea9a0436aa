//! Password checks through PAM and the admin-group rule, and the threads they run on.
//! A login through [`Pam`] also opens a real PAM session, kept open on a thread of its
//! own until the console's session ends ([`pam_session`], [`LoginSession`]).
//!
//! Every refusal looks the same from outside: the same answer (the login page says
//! "Wrong user name or password") and about the same time. PAM's `pam_unix` makes a
//! wrong password wait 2 s (libpam varies that by up to a quarter either way); a
//! refusal that does not need PAM (a disallowed user, an account outside the admin
//! groups, a locked account with the right password) is held back as long.

use std::ffi::CString;
use std::fmt::Debug;
use std::net::IpAddr;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use nix::unistd::{Group, User, getgrouplist};
use pam_client::conv_mock::Conversation;
use pam_client::{Context, Flag};

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password (PAM does not tell which, neither do we).
    #[error("wrong user name or password")]
    BadCredentials,
    /// The account may not use the console: not root and in none of the admin groups.
    /// Its password is not checked.
    #[error("{0} is not root and not in an admin group ({1})")]
    NotAdmin(String, String),
    /// The account is in `disallowed_users`. Its password is not checked.
    #[error("{0} is in disallowed_users of agent.toml and may not log in to the console")]
    Disallowed(String),
    /// The account is locked or expired (PAM's account management said no).
    #[error("account {0} may not log in: {1}")]
    AccountRefused(String, String),
    /// PAM could not be used at all (missing service file, broken module).
    #[error("PAM service {0}: {1}")]
    Pam(String, String),
    /// The account's sudo rules do not let it run every command as root (asked when a
    /// session turns on administrative access, [`crate::admin`]). Its password is not
    /// checked.
    #[error("{0} may not run every command as root by the sudo policy")]
    NotSudoer(String),
    /// The sudo policy could not be learned ([`crate::sudo::PolicyError`]); nothing was
    /// decided.
    #[error("{0}")]
    Policy(String),
    /// The check could not be run (no thread for it); nothing was decided.
    #[error("checking a login: {0}")]
    Unavailable(String),
}

impl AuthError {
    /// Why the login was refused, without the user name: what the journal says of a
    /// failed login, whose user name may be a password typed into the wrong field.
    pub fn reason(&self) -> String {
        match self {
            Self::BadCredentials => "wrong user name or password".into(),
            Self::NotAdmin(_, groups) => {
                format!("no such account, or not root and not in an admin group ({groups})")
            }
            Self::Disallowed(_) => {
                "the account is in disallowed_users of agent.toml and may not log in to the \
                 console"
                    .into()
            }
            Self::AccountRefused(_, why) => format!("the account may not log in: {why}"),
            Self::NotSudoer(_) => {
                "the account's sudo rules do not let it run every command as root".into()
            }
            Self::Pam(..) | Self::Policy(_) | Self::Unavailable(_) => self.to_string(),
        }
    }

    /// Whether this refusal came without PAM's own delay on failure, so it must be
    /// held back to look like a wrong password.
    fn needs_delay(&self) -> bool {
        matches!(
            self,
            Self::NotAdmin(..)
                | Self::Disallowed(_)
                | Self::AccountRefused(..)
                | Self::NotSudoer(_)
        )
    }
}

/// What checks a login's user name and password. The console uses [`Pam`]; tests
/// put in one that is slow, counts its calls or accepts a known password.
pub trait Authenticator: Debug + Send + Sync {
    /// Checks `user`'s `password` and that the account may administer the node.
    /// Blocking: the console calls it on a thread of its own.
    fn authenticate(&self, user: &str, password: &str) -> Result<(), AuthError>;

    /// Checks a login of `user` from `client` as [`Authenticator::authenticate`] does
    /// and, when it succeeds, opens a session for it that stays open until the
    /// returned [`LoginSession`] is dropped. Blocking, like `authenticate`. Without
    /// sessions of its own (the fakes of tests) the session is [`LoginSession::none`].
    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<LoginSession, AuthError> {
        let _ = client;
        self.authenticate(user, password)
            .map(|()| LoginSession::none())
    }

    /// How long this check takes to refuse a wrong password: refusals decided without
    /// it are held back as long. PAM's `pam_unix` waits 2 s, varied by libpam.
    fn fail_delay(&self) -> Duration {
        pam_unix_delay()
    }
}

/// An open login session (a PAM session for [`Pam`]), kept with the console's session
/// ([`crate::session::Sessions`]). Dropping it ends the session: logout, expiry and
/// the session store forgetting it all drop it. Dropping never blocks: it only tells
/// the thread that owns the PAM handle, which then closes the session on its own.
#[derive(Debug)]
pub struct LoginSession {
    /// Disconnects when dropped; the owner of the session waits for that.
    _close: Option<mpsc::Sender<()>>,
    /// The connection to the privileged helper that holds the session
    /// ([`remote`]); closing it (dropping the last reference) ends the session there.
    held: Option<Arc<helper::Held>>,
}

impl LoginSession {
    /// No session to close (logins that open none).
    pub fn none() -> Self {
        Self {
            _close: None,
            held: None,
        }
    }

    /// A session whose owner waits on the receiving end of `close`: its `recv` fails
    /// (the channel disconnects) when this value is dropped.
    pub fn closed_through(close: mpsc::Sender<()>) -> Self {
        Self {
            _close: Some(close),
            held: None,
        }
    }

    /// A session the privileged helper holds for as long as `held` is open.
    pub fn held_by_helper(held: helper::Held) -> Self {
        Self {
            _close: None,
            held: Some(Arc::new(held)),
        }
    }

    /// The helper's connection of a session it holds, for requests made as the
    /// session's user (a terminal).
    pub fn helper(&self) -> Option<Arc<helper::Held>> {
        self.held.clone()
    }

    /// Whether the login session has ended underneath the console: the helper that
    /// held it closed its connection (it stopped or restarted, and closed the PAM
    /// session). A session that is not the helper's ends only with the console's.
    pub fn has_ended(&self) -> bool {
        self.held.as_ref().is_some_and(|h| !h.is_open())
    }
}

/// `pam_unix`'s 2 s delay on failure as libpam varies it: the mean of three random
/// numbers moves it by up to 25 % either way (`_pam_compute_delay`).
pub fn pam_unix_delay() -> Duration {
    let mut bytes = [0u8; 12];
    // Without randomness the delay is simply 2 s.
    let _ = getrandom::fill(&mut bytes);
    let sum: f64 = bytes
        .chunks_exact(4)
        .map(|c| f64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])) / f64::from(u32::MAX))
        .sum();
    let deviation = (sum / 3.0 - 0.5) * 0.5;
    Duration::from_secs_f64(2.0 * (1.0 + deviation))
}

/// Most password checks running at once, from all clients together (like
/// cockpit-ws's `MaxStartups`); more are answered "busy" at once.
pub const MAX_AT_ONCE: usize = 10;

/// The threads password checks run on: a thread of its own for each, at most
/// [`MAX_AT_ONCE`] at a time, apart from the runtime's blocking pool that serves
/// pages, so that a flood of logins stuck in PAM cannot stall the console.
#[derive(Debug)]
pub struct Checks {
    permits: Arc<Semaphore>,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            permits: Arc::new(Semaphore::new(MAX_AT_ONCE)),
        }
    }
}

/// Room for one password check, from [`Checks::try_start`].
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Checks {
    /// Room for one more check, or `None` when [`MAX_AT_ONCE`] are running.
    pub fn try_start(&self) -> Option<Slot> {
        self.permits
            .clone()
            .try_acquire_owned()
            .ok()
            .map(|p| Slot { _permit: p })
    }

    /// Runs [`check`] on a thread of its own; the slot is freed when the thread ends,
    /// even if the client has gone away by then.
    pub async fn run(
        slot: Slot,
        auth: Arc<dyn Authenticator>,
        disallowed: Vec<String>,
        login: Login,
    ) -> Result<LoginSession, AuthError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("hvnode-login".into())
            .spawn(move || {
                let result = check(auth.as_ref(), &disallowed, &login);
                drop(slot);
                let _ = tx.send(result);
            })
            .map_err(|e| {
                AuthError::Unavailable(format!(
                    "starting a thread for the password check: {e}; the system is out of \
                     threads or memory, see the journal"
                ))
            })?;
        rx.await.unwrap_or_else(|_| {
            Err(AuthError::Unavailable(
                "the password check's thread ended without an answer (it panicked); see \
                 the journal"
                    .into(),
            ))
        })
    }
}

/// One login to check: who, with what password, from where.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
    /// The client's address (`PAM_RHOST`).
    pub client: IpAddr,
}

impl Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, nor the name typed (it may be a password).
        f.debug_struct("Login")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// Decides one login with [`Authenticator::login`]: a user in `disallowed` is refused
/// without asking `auth`, and every refusal `auth` decided without its own delay on
/// failure is held back until [`Authenticator::fail_delay`] has passed. Blocking.
pub fn check(
    auth: &dyn Authenticator,
    disallowed: &[String],
    login: &Login,
) -> Result<LoginSession, AuthError> {
    let start = Instant::now();
    let user = login.user.as_str();
    let result = if disallowed.iter().any(|d| d == user) {
        Err(AuthError::Disallowed(user.to_string()))
    } else {
        auth.login(user, &login.password, login.client)
    };
    if result.as_ref().is_err_and(AuthError::needs_delay) {
        std::thread::sleep(auth.fail_delay().saturating_sub(start.elapsed()));
    }
    result
}

/// Logins through a PAM service for root and members of the admin groups.
#[derive(Debug, Clone)]
pub struct Pam {
    /// The PAM service (`/etc/pam.d/<service>`).
    pub service: String,
    /// Groups whose members (besides root) may log in.
    pub admin_groups: Vec<String>,
}

impl Authenticator for Pam {
    fn authenticate(&self, user: &str, password: &str) -> Result<(), AuthError> {
        authenticate(&self.service, user, password, &self.admin_groups)
    }

    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<LoginSession, AuthError> {
        pam_session::open(&self.service, user, password, client, &self.admin_groups)
    }
}

/// Checks that `user` is root or a member of one of `admin_groups` and then, only
/// then, `user`'s `password` with PAM service `service`: the password of an account
/// that may not administer the node is never checked, so a login cannot tell whether
/// it was right. Blocking: call from a thread of its own.
pub fn authenticate(
    service: &str,
    user: &str,
    password: &str,
    admin_groups: &[String],
) -> Result<(), AuthError> {
    may_try(user, password, admin_groups)?;
    let conv = Conversation::with_credentials(user, password);
    let mut ctx = Context::new(service, Some(user), conv)
        .map_err(|e| AuthError::Pam(service.to_string(), e.to_string()))?;
    ctx.authenticate(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|_| AuthError::BadCredentials)?;
    ctx.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK)
        .map_err(|e| AuthError::AccountRefused(user.to_string(), e.to_string()))
}

/// Refuses, without asking PAM, empty or NUL-containing credentials and accounts that
/// are neither root nor in one of `admin_groups`.
fn may_try(user: &str, password: &str, admin_groups: &[String]) -> Result<(), AuthError> {
    if user.is_empty() || password.is_empty() || user.contains('\0') || password.contains('\0') {
        return Err(AuthError::BadCredentials);
    }
    if !is_admin(user, admin_groups) {
        return Err(AuthError::NotAdmin(
            user.to_string(),
            admin_groups.join(", "),
        ));
    }
    Ok(())
}

/// Whether `user` is root or a member of one of `admin_groups` (primary or
/// supplementary).
pub fn is_admin(user: &str, admin_groups: &[String]) -> bool {
    let Ok(Some(account)) = User::from_name(user) else {
        return false;
    };
    if account.uid.is_root() {
        return true;
    }
    let Ok(name) = CString::new(user) else {
        return false;
    };
    let Ok(gids) = getgrouplist(&name, account.gid) else {
        return false;
    };
    gids.into_iter()
        .filter_map(|gid| Group::from_gid(gid).ok().flatten())
        .any(|g| admin_groups.contains(&g.name))
}

pub mod pam_session;
pub mod remote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_admin_and_unknown_users_are_not() {
        assert!(is_admin("root", &[]));
        assert!(!is_admin("no-such-user-hvnode", &["root".into()]));
    }

    #[derive(Debug)]
    struct Accepts;

    impl Authenticator for Accepts {
        fn authenticate(&self, user: &str, _: &str) -> Result<(), AuthError> {
            match user {
                "outsider" => Err(AuthError::NotAdmin(user.into(), String::new())),
                "nobody" => Err(AuthError::BadCredentials),
                _ => Ok(()),
            }
        }

        fn fail_delay(&self) -> Duration {
            Duration::from_millis(50)
        }
    }

    #[test]
    fn refusals_without_pam_take_as_long_as_a_wrong_password() {
        let disallowed = ["root".to_string()];
        for (user, want) in [
            ("root", Err(AuthError::Disallowed("root".into()))),
            (
                "outsider",
                Err(AuthError::NotAdmin("outsider".into(), String::new())),
            ),
            ("nobody", Err(AuthError::BadCredentials)),
            ("ops", Ok(())),
        ] {
            let start = Instant::now();
            let login = Login {
                user: user.into(),
                password: "pw".into(),
                client: [127, 0, 0, 1].into(),
            };
            let got = check(&Accepts, &disallowed, &login).map(|_| ());
            assert_eq!(got, want, "{user}");
            let held = start.elapsed() >= Duration::from_millis(50);
            assert_eq!(held, user == "root" || user == "outsider", "{user}");
        }
    }

    #[test]
    fn reasons_never_name_the_user() {
        let typed = "Hunter2-typed-in-the-wrong-field";
        for e in [
            AuthError::BadCredentials,
            AuthError::NotAdmin(typed.into(), "sudo, wheel".into()),
            AuthError::Disallowed(typed.into()),
            AuthError::AccountRefused(typed.into(), "account expired".into()),
            AuthError::NotSudoer(typed.into()),
        ] {
            let reason = e.reason();
            assert!(!reason.contains(typed), "{reason}");
            assert!(e.to_string().contains(typed) || e == AuthError::BadCredentials);
        }
        let e = AuthError::NotAdmin(typed.into(), "sudo, wheel".into());
        assert!(e.reason().contains("sudo, wheel"), "{}", e.reason());
    }

    #[test]
    fn pam_unix_delay_varies_by_a_quarter() {
        for _ in 0..100 {
            let d = pam_unix_delay();
            assert!(
                (Duration::from_millis(1500)..=Duration::from_millis(2500)).contains(&d),
                "{d:?}"
            );
        }
    }

    #[test]
    fn empty_or_nul_credentials_never_reach_pam() {
        for (u, p) in [("", "x"), ("root", ""), ("ro\0ot", "x"), ("root", "a\0b")] {
            assert_eq!(
                authenticate("no-such-service", u, p, &[]),
                Err(AuthError::BadCredentials)
            );
        }
    }
}
