//! A real PAM session for each console login, on a thread of its own that owns the PAM
//! handle from `pam_start` to `pam_end`.
//!
//! The thread authenticates (`pam_authenticate`), checks the account (`pam_acct_mgmt`),
//! establishes credentials and opens the session (`pam_setcred(PAM_ESTABLISH_CRED)`,
//! `pam_open_session`), answers the login, and then waits, parked, until the
//! console's session ends: logout, idle or absolute expiry, or the session store
//! dropping it all drop the [`LoginSession`], which disconnects the channel the thread
//! waits on. It then calls `pam_close_session` and `pam_setcred(PAM_DELETE_CRED)` and
//! ends. Nothing that serves pages ever waits for PAM.
//!
//! Why one thread per open session: `pam-client`'s `Context` is `Send` but its
//! `Session` borrows it, and some modules keep per-thread state between open and close
//! (`pam_selinux` sets the calling thread's exec context); closing on the thread that
//! opened is what every PAM application does. The thread is parked in `recv` and costs
//! only its touched stack.
//!
//! Items set: `PAM_RHOST` is the client's address (IPv4 clients of a `[::]` socket as
//! plain IPv4), `PAM_TTY` is [`PAM_TTY`], `PAM_USER` the account.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pam_client::conv_mock::Conversation;
use pam_client::{Context, Flag};

use super::{AuthError, LoginSession, may_try};

/// The `PAM_TTY` of console logins. Not a device: no `/dev/` prefix and no `:` (which
/// `pam_systemd` and others take for an X display). Cockpit's `cockpit-session` likewise
/// names its logins by the service rather than a terminal (`utmp` line "web console");
/// a name without a space keeps `pam_securetty` and `pam_access` tty rules writable
/// (`pam_access`: `+ : root : hvnode-console`). `pam_securetty` refuses root on any
/// tty not listed in `/etc/securetty`, so the image's stack does not use it: root is
/// refused by the console's own `disallowed_users`.
pub const PAM_TTY: &str = "hvnode-console";

/// Checks `user`'s `password` as [`super::authenticate`] does and opens a PAM session
/// for a login from `client` with PAM service `service`, on a thread of its own that
/// keeps it open until the returned [`LoginSession`] is dropped. Blocking until the
/// session is open or the login refused.
pub fn open(
    service: &str,
    user: &str,
    password: &str,
    client: IpAddr,
    admin_groups: &[String],
) -> Result<LoginSession, AuthError> {
    may_try(user, password, admin_groups)?;
    let (answer_tx, answer_rx) = mpsc::channel();
    let (service, user, password) = (service.to_string(), user.to_string(), password.to_string());
    std::thread::Builder::new()
        .name("hvnode-pam".into())
        .spawn(move || run(&service, &user, &password, client, &answer_tx))
        .map_err(|e| {
            AuthError::Unavailable(format!(
                "starting a thread for the PAM session: {e}; the system is out of threads \
                 or memory, see the journal"
            ))
        })?;
    answer_rx.recv().unwrap_or_else(|_| {
        Err(AuthError::Unavailable(
            "the PAM session's thread ended without an answer (it panicked); see the journal"
                .into(),
        ))
    })
}

/// PAM sessions open now (opened and not yet closed), in this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// How many PAM sessions this process has open.
pub fn open_sessions() -> usize {
    OPEN.load(Ordering::SeqCst)
}

/// Waits until every PAM session this process opened has been closed (their
/// [`LoginSession`]s dropped first), or `wait` has passed; returns how many are
/// still open. For a stop: the process must not end before their threads have
/// called `pam_close_session`.
pub fn wait_closed(wait: Duration) -> usize {
    let deadline = Instant::now() + wait;
    loop {
        let open = open_sessions();
        if open == 0 || Instant::now() >= deadline {
            return open;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Counts a PAM session as open from its creation to its drop.
struct Counted;

impl Counted {
    fn new() -> Self {
        OPEN.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The PAM session's thread: answers the login on `answer`, then keeps the session
/// open until the [`LoginSession`] it sent is dropped.
fn run(
    service: &str,
    user: &str,
    password: &str,
    client: IpAddr,
    answer: &mpsc::Sender<Result<LoginSession, AuthError>>,
) {
    let pam_error = |what: &str, e: pam_client::Error| {
        AuthError::Pam(
            service.to_string(),
            format!(
                "{what}: {e}; check /etc/pam.d/{service} and the modules it names (the \
                 journal has their messages)"
            ),
        )
    };
    let conv = Conversation::with_credentials(user, password);
    let mut ctx = match Context::new(service, Some(user), conv) {
        Ok(c) => c,
        Err(e) => {
            let _ = answer.send(Err(pam_error("starting PAM", e)));
            return;
        }
    };
    let rhost = client.to_canonical().to_string();
    if let Err(e) = ctx
        .set_rhost(Some(&rhost))
        .and_then(|()| ctx.set_tty(Some(PAM_TTY)))
    {
        let _ = answer.send(Err(pam_error("setting PAM_RHOST and PAM_TTY", e)));
        return;
    }
    if ctx.authenticate(Flag::DISALLOW_NULL_AUTHTOK).is_err() {
        let _ = answer.send(Err(AuthError::BadCredentials));
        return;
    }
    // An expired account or password, or one pam_faillock has locked, is refused as a
    // wrong password would be; the journal gets PAM's reason (AuthError::reason).
    if let Err(e) = ctx.acct_mgmt(Flag::DISALLOW_NULL_AUTHTOK) {
        let _ = answer.send(Err(AuthError::AccountRefused(
            user.to_string(),
            e.to_string(),
        )));
        return;
    }
    // pam_setcred(PAM_ESTABLISH_CRED), pam_open_session, then PAM_REINITIALIZE_CRED as
    // OpenSSH does; on failure pam-client closes what it opened.
    let session = match ctx.open_session(Flag::NONE) {
        Ok(s) => s,
        Err(e) => {
            let _ = answer.send(Err(pam_error("opening the PAM session", e)));
            return;
        }
    };
    // Counted until the session is closed, at the end of this function.
    let _counted = Counted::new();
    let (close_tx, close_rx) = mpsc::channel::<()>();
    if answer
        .send(Ok(LoginSession::closed_through(close_tx)))
        .is_err()
    {
        // The login's thread is gone; the session drops (and closes) below.
        tracing::warn!(user = %user, "PAM session opened for a login nobody waits for; closing it");
    } else {
        // Returns once the console's session ends (the sender is dropped).
        while close_rx.recv().is_ok() {}
    }
    match session.close(Flag::NONE) {
        Ok(()) => tracing::info!(user = %user, client = %rhost, "PAM session closed"),
        Err(e) => tracing::warn!(
            user = %user,
            "closing the PAM session: {e}; the PAM session modules of /etc/pam.d/{service} \
             said no (see their messages in the journal); the handle is released anyway"
        ),
    }
}
