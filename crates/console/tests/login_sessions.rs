//! Each login keeps its login session (a PAM session with the real authenticator) for
//! as long as the console's session lives, and lets go of it on logout and expiry.
//! The authenticator here is a fake whose sessions the test can watch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, get, login, post_form};
use console::auth::{AuthError, Authenticator, LoginSession};

/// Accepts `ops` with password `pw`; hands out sessions the test watches, and records
/// the client each login came from.
#[derive(Debug, Default)]
struct Watched {
    opened: Mutex<Vec<(IpAddr, Receiver<()>)>>,
}

impl Watched {
    /// Whether the login session opened `n`th has been let go of.
    fn closed(&self, n: usize) -> bool {
        let opened = self.opened.lock().unwrap();
        matches!(opened[n].1.try_recv(), Err(TryRecvError::Disconnected))
    }

    fn count(&self) -> usize {
        self.opened.lock().unwrap().len()
    }
}

impl Authenticator for Watched {
    fn authenticate(&self, user: &str, password: &str) -> Result<(), AuthError> {
        match (user, password) {
            ("ops", "pw") => Ok(()),
            _ => Err(AuthError::BadCredentials),
        }
    }

    fn login(&self, user: &str, password: &str, client: IpAddr) -> Result<LoginSession, AuthError> {
        self.authenticate(user, password)?;
        let (tx, rx) = mpsc::channel();
        self.opened.lock().unwrap().push((client, rx));
        Ok(LoginSession::closed_through(tx))
    }

    fn fail_delay(&self) -> Duration {
        Duration::from_millis(10)
    }
}

#[test]
fn logout_closes_the_login_session() {
    let auth = Arc::new(Watched::default());
    let server = Server::start_with_auth(auth.clone(), |_| {});
    let s = login(&server, "ops", "pw").unwrap();
    assert_eq!(auth.count(), 1);
    assert_eq!(
        auth.opened.lock().unwrap()[0].0,
        IpAddr::from([127, 0, 0, 1]),
        "the session knows the client (PAM_RHOST)"
    );
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        200
    );
    assert!(!auth.closed(0), "open while logged in");
    let out = post_form(
        &server.url("/logout"),
        Some(&s),
        &[],
        &format!("csrf={}", s.csrf),
    );
    assert_eq!(out.status, 303);
    assert!(auth.closed(0), "logout closes the login session");
    // A refused login opens none.
    assert!(login(&server, "ops", "wrong").is_err());
    assert_eq!(auth.count(), 1);
}

#[test]
fn expiry_closes_the_login_session() {
    let auth = Arc::new(Watched::default());
    let server = Server::start_with_auth(auth.clone(), |c| c.idle_timeout_secs = 1);
    let s = login(&server, "ops", "pw").unwrap();
    assert!(!auth.closed(0));
    server.clock.advance(Duration::from_millis(2200));
    assert_eq!(
        get(&server.url("/api/v1/session"), Some(&s), &[]).status,
        401
    );
    assert!(
        auth.closed(0),
        "an expired session's login session is closed"
    );
}

#[test]
fn stopping_the_console_closes_every_login_session() {
    let auth = Arc::new(Watched::default());
    let server = Server::start_with_auth(auth.clone(), |_| {});
    let _a = login(&server, "ops", "pw").unwrap();
    let _b = login(&server, "ops", "pw").unwrap();
    assert!(!auth.closed(0) && !auth.closed(1));
    drop(server);
    // The last reference to the state may go a moment after the server's thread.
    for _ in 0..50 {
        if auth.closed(0) && auth.closed(1) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the login sessions stayed open after the console stopped");
}
