//! What the journal says of logins: people type passwords into the user name field,
//! and the console shows the journal. A refused, throttled or busy login is logged
//! with a keyed tag of the name and the client's address, never the name typed; a
//! successful one with the account's name.
//!
//! The console's log lines are captured here with a tracing subscriber writing to
//! memory, as the agent's journal subscriber would receive them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::{Server, login_from};
use console::auth::{AuthError, Authenticator};

/// Every log line of this test process, at every level.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process's log, captured from the first call on (tests in one process share it
/// and look only for their own names).
fn log() -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
    .clone()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The password the stand-in accepts.
const RIGHT: &str = "right-password";

/// A password check that knows one account, `ops`, refuses every other name as PAM's
/// admin check does (naming it in its error), and refuses quickly.
#[derive(Debug)]
struct OneAccount;

impl Authenticator for OneAccount {
    fn authenticate(&self, user: &str, password: &str) -> Result<(), AuthError> {
        match (user, password) {
            ("ops", RIGHT) => Ok(()),
            ("ops", _) => Err(AuthError::BadCredentials),
            _ => Err(AuthError::NotAdmin(user.into(), "sudo, wheel".into())),
        }
    }

    fn fail_delay(&self) -> Duration {
        Duration::from_millis(10)
    }
}

/// A password typed into the user name field, against the console's real check (PAM
/// with the admin-group rule, which refuses the name before PAM is asked): the
/// journal has the client's address and a tag, never the name.
#[test]
fn a_password_typed_as_the_user_name_never_reaches_the_log() {
    let log = log();
    let server = Server::start(|_| {});
    let typed = "Tr0ub4dor&3-typed-as-user";
    let r = login_from(ip("127.0.0.21"), &server, typed, "whatever");
    assert_eq!(r.status, 401, "{}", r.body);
    let text = log.text();
    let tag = console::login::user_tag(typed);
    let line = text
        .lines()
        .find(|l| l.contains("login failed") && l.contains(&tag))
        .unwrap_or_else(|| panic!("no line of the failed login with tag {tag}:\n{text}"));
    assert!(line.contains("127.0.0.21"), "no client address: {line}");
    assert!(line.contains("admin group"), "no reason: {line}");
    assert!(
        !text.contains(typed),
        "the name typed is in the log:\n{text}"
    );
}

/// Refused, throttled and successful logins through the stand-in check: only the
/// successful one names its account.
#[test]
fn only_a_successful_login_names_its_user() {
    let log = log();
    let server = Server::start_with_auth(Arc::new(OneAccount), |_| {});
    let from = ip("127.0.0.22");
    // Refused: an unknown name, then a known one with a wrong password.
    let typed = "S3cret-typed-as-user-name";
    assert_eq!(login_from(from, &server, typed, "x").status, 401);
    assert_eq!(login_from(from, &server, "ops", "wrong").status, 401);
    // Throttled: five failures from one client, the sixth is not checked.
    for _ in 0..3 {
        assert_eq!(login_from(from, &server, typed, "x").status, 401);
    }
    let throttled = login_from(from, &server, typed, "x");
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    let text = log.text();
    assert!(
        !text.contains(typed),
        "the name typed is in the log:\n{text}"
    );
    let tag = console::login::user_tag(typed);
    assert!(
        text.lines()
            .any(|l| l.contains("login throttled") && l.contains(&tag) && l.contains("127.0.0.22")),
        "no throttled line with tag {tag} and the client:\n{text}"
    );
    assert!(
        !text
            .lines()
            .any(|l| l.contains("127.0.0.22") && l.contains("user=ops")),
        "a failed login named its account:\n{text}"
    );
    // A successful login, from another client: the account is named.
    let ok = login_from(ip("127.0.0.23"), &server, "ops", RIGHT);
    assert_eq!(ok.status, 303, "{}", ok.body);
    let text = log.text();
    assert!(
        text.lines()
            .any(|l| l.contains("127.0.0.23") && l.contains("user=ops") && l.contains("login")),
        "the successful login is not in the log:\n{text}"
    );
}
