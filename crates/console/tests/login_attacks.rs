//! Attacks on the login form, against a console whose password check is a stand-in:
//! slow, counting its calls, accepting one known password for every account.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{Reply, Server, login_from};
use console::auth::{AuthError, Authenticator};

/// The password the stand-in accepts for every account.
const RIGHT: &str = "right-password";

/// A password check that takes `delay`, counts its calls, how many ran at once and on
/// which threads.
#[derive(Debug, Default)]
struct Fake {
    delay: Duration,
    calls: AtomicUsize,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    threads: Mutex<Vec<String>>,
}

impl Fake {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Self {
            delay,
            ..Self::default()
        })
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Authenticator for Fake {
    fn authenticate(&self, _user: &str, password: &str) -> Result<(), AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.threads.lock().unwrap().push(name);
        std::thread::sleep(self.delay);
        self.running.fetch_sub(1, Ordering::SeqCst);
        if password == RIGHT {
            Ok(())
        } else {
            Err(AuthError::BadCredentials)
        }
    }

    fn fail_delay(&self) -> Duration {
        self.delay
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Sends all `logins` (from address, user, password) at the same moment; the answers
/// in the same order.
fn at_once(server: &Server, logins: &[(IpAddr, String, String)]) -> Vec<Reply> {
    let barrier = Barrier::new(logins.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = logins
            .iter()
            .map(|(from, user, password)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    login_from(*from, server, user, password)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn forty_bad_logins_at_once_from_one_client_reach_the_check_at_most_five_times() {
    let fake = Fake::new(Duration::from_millis(500));
    let server = Server::start_with_auth(fake.clone(), |_| {});
    let logins: Vec<_> = (0..40)
        .map(|_| (ip("127.0.0.1"), "ops".to_string(), "wrong".to_string()))
        .collect();
    let replies = at_once(&server, &logins);
    println!("{} of 40 reached the password check", fake.calls());
    for r in &replies {
        assert!(
            [401, 429, 503].contains(&r.status),
            "{} {}",
            r.status,
            r.body
        );
        if r.status != 401 {
            assert!(r.header("retry-after").is_some(), "{}", r.status);
        }
    }
    assert!(
        fake.calls() <= console::session::PER_CLIENT,
        "{} of 40 bad logins at once reached the password check",
        fake.calls()
    );
}

#[test]
fn password_checks_run_on_their_own_threads_a_few_at_a_time() {
    let fake = Fake::new(Duration::from_millis(2000));
    let server = Server::start_with_auth(fake.clone(), |_| {});
    // One attempt from each of 24 clients: no client is over its limit.
    let logins: Vec<_> = (1..=24)
        .map(|i| (ip(&format!("127.0.1.{i}")), format!("u{i}"), "wrong".into()))
        .collect();
    let page_time = std::thread::scope(|scope| {
        let flood = scope.spawn(|| at_once(&server, &logins));
        std::thread::sleep(Duration::from_millis(500));
        // Pages still answer while the password checks are busy.
        let start = Instant::now();
        let page = common::get(&server.url("/login"), None, &[]);
        assert_eq!(page.status, 200);
        let page_time = start.elapsed();
        let replies = flood.join().unwrap();
        let busy: Vec<_> = replies.iter().filter(|r| r.status == 503).collect();
        assert!(!busy.is_empty(), "24 at once are more than the cap");
        for r in busy {
            assert!(r.header("retry-after").is_some());
        }
        page_time
    });
    assert!(page_time < Duration::from_millis(1000), "{page_time:?}");
    let most = fake.most_at_once.load(Ordering::SeqCst);
    assert!(
        most <= console::auth::MAX_AT_ONCE,
        "{most} password checks ran at once"
    );
    let threads = fake.threads.lock().unwrap();
    assert!(
        threads.iter().all(|t| t.starts_with("hvnode-login")),
        "password checks ran on {threads:?}"
    );
}

#[test]
fn a_flood_of_failures_from_one_client_does_not_lock_out_another() {
    let fake = Fake::new(Duration::from_millis(200));
    let server = Server::start_with_auth(fake.clone(), |_| {});
    let logins: Vec<_> = (0..40)
        .map(|i| (ip("127.0.0.1"), format!("u{i}"), "wrong".into()))
        .collect();
    let replies = at_once(&server, &logins);
    assert!(replies.iter().all(|r| r.status != 303));
    let r = login_from(ip("127.0.0.2"), &server, "ops", RIGHT);
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn failures_against_one_account_throttle_that_account_only() {
    let fake = Fake::new(Duration::from_millis(10));
    let server = Server::start_with_auth(fake.clone(), |_| {});
    for i in 0..10 {
        let r = login_from(ip(&format!("127.0.2.{}", i + 1)), &server, "ops", "wrong");
        assert_eq!(r.status, 401, "{i}: {}", r.body);
    }
    // Many clients guessing one account's password: now even the right one waits.
    let r = login_from(ip("127.0.2.100"), &server, "ops", RIGHT);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert_eq!(fake.calls(), 10);
    // Other accounts are not affected.
    let r = login_from(ip("127.0.2.101"), &server, "dev", RIGHT);
    assert_eq!(r.status, 303, "{}", r.body);
}

#[test]
fn root_is_refused_like_a_wrong_password_without_asking_the_check() {
    let fake = Fake::new(Duration::from_millis(10));
    let server = Server::start_with_auth(fake.clone(), |_| {});
    let root = login_from(ip("127.0.3.1"), &server, "root", RIGHT);
    assert_eq!(fake.calls(), 0, "root's password was checked");
    let wrong = login_from(ip("127.0.3.2"), &server, "ops", "wrong");
    assert_eq!(fake.calls(), 1);
    assert_eq!(root.status, 401, "{}", root.body);
    assert_eq!(root.status, wrong.status);
    assert_eq!(
        root.body,
        wrong.body.replace("value=\"ops\"", "value=\"root\"")
    );
    assert!(common::session_cookie(&root).is_none());
}

#[test]
fn disallowed_users_come_from_the_configuration() {
    let fake = Fake::new(Duration::from_millis(10));
    let server = Server::start_with_auth(fake.clone(), |c| {
        c.disallowed_users = vec!["ops".into()];
    });
    let r = login_from(ip("127.0.5.1"), &server, "ops", RIGHT);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("Wrong user name or password"), "{}", r.body);
    assert_eq!(fake.calls(), 0);
    let r = login_from(ip("127.0.5.2"), &server, "root", RIGHT);
    assert_eq!(r.status, 303, "root is allowed when the list leaves it out");
    assert!(console::Config::default().disallowed_users == ["root"]);
}
