//! Logged-in sessions and the throttle on logins.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::auth::LoginSession;
use crate::clock::{Clock, SystemClock};

/// The session cookie's name. The `__Host-` prefix makes browsers accept it only when
/// it is `Secure`, has `Path=/` and no `Domain`, so no other site or subdomain can set it.
pub const COOKIE: &str = "__Host-hvnode-session";

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The kernel's random source does not fail on Linux once booted; should it, the
    // zero token is never issued because `Sessions::create` refuses duplicates.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// One logged-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    /// The token every state change must carry (form field `csrf` or header
    /// `X-CSRF-Token`).
    pub csrf: String,
    pub created: Instant,
    pub last_seen: Instant,
    /// Administrative access: `None` while the session is limited (read-only), as every
    /// session starts; when it is on, the instant the sudo policy last allowed it
    /// ([`crate::admin`] asks again once that is older than its cache time).
    pub admin: Option<Instant>,
}

impl Session {
    /// Whether administrative access is on.
    pub fn is_admin(&self) -> bool {
        self.admin.is_some()
    }
}

/// A session as the store keeps it: what requests see, and the login's PAM session,
/// which is closed when the entry is dropped (and only then: requests get clones of
/// [`Session`], never of this).
#[derive(Debug)]
struct Entry {
    session: Session,
    login: LoginSession,
}

/// All sessions, keyed by their cookie value. Every way a session ends (logout,
/// expiry, the store itself dropped) drops its [`LoginSession`], which closes the PAM
/// session on its own thread.
#[derive(Debug)]
pub struct Sessions {
    by_token: HashMap<String, Entry>,
    /// What idle times are measured with.
    clock: Arc<dyn Clock>,
    /// How long a session lives at most, however active.
    max_age: Duration,
}

/// How long a session lives at most unless configured otherwise (`session_max_hours`).
pub const MAX_AGE: Duration = Duration::from_secs(8 * 3600);

impl Default for Sessions {
    fn default() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }
}

impl Sessions {
    /// No sessions yet; idle times measured with `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        Self {
            by_token: HashMap::new(),
            clock,
            max_age: MAX_AGE,
        }
    }

    /// Sessions end `max_age` after login, however active.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Starts a session for `user` that has no login session to close; returns its
    /// cookie value and CSRF token.
    pub fn create(&mut self, user: &str) -> Option<(String, String)> {
        self.create_with(user, LoginSession::none())
    }

    /// Starts a session for `user` that keeps `login` open until it ends; returns its
    /// cookie value and CSRF token. `None` (and `login` closed) without randomness.
    pub fn create_with(&mut self, user: &str, login: LoginSession) -> Option<(String, String)> {
        let token = random_token();
        let csrf = random_token();
        if token.is_empty() || csrf.is_empty() || self.by_token.contains_key(&token) {
            return None;
        }
        let now = self.clock.now();
        self.by_token.insert(
            token.clone(),
            Entry {
                session: Session {
                    user: user.to_string(),
                    csrf: csrf.clone(),
                    created: now,
                    last_seen: now,
                    admin: None,
                },
                login,
            },
        );
        Some((token, csrf))
    }

    /// The session of `token` if it has not been idle longer than `idle` nor lived
    /// longer than its maximum age, and its login session is still open (the helper
    /// that holds it may have stopped); `touch` counts this request as activity.
    pub fn get(&mut self, token: &str, idle: Duration, touch: bool) -> Option<Session> {
        let now = self.clock.now();
        let entry = self.by_token.get_mut(token)?;
        let ended = entry.login.has_ended();
        let session = &mut entry.session;
        if ended
            || now.duration_since(session.last_seen) > idle
            || now.duration_since(session.created) > self.max_age
        {
            self.by_token.remove(token);
            return None;
        }
        if touch {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    /// The privileged helper's connection holding the login of the session of
    /// `token`, when the helper holds it ([`LoginSession::helper`]).
    pub fn helper_of(&self, token: &str) -> Option<Arc<helper::Held>> {
        self.by_token.get(token)?.login.helper()
    }

    /// Turns administrative access on for the session of `token`, its policy checked at
    /// `checked`; `false` when there is no such session (it ended meanwhile).
    pub fn grant_admin(&mut self, token: &str, checked: Instant) -> bool {
        match self.by_token.get_mut(token) {
            Some(Entry { session: s, .. }) => {
                s.admin = Some(checked);
                true
            }
            None => false,
        }
    }

    /// Records that the policy allowed the session of `token` again at `checked`, if
    /// its administrative access is still on (it may have been turned off meanwhile).
    pub fn renew_admin(&mut self, token: &str, checked: Instant) {
        if let Some(s) = self
            .by_token
            .get_mut(token)
            .map(|e| &mut e.session)
            .filter(|s| s.admin.is_some())
        {
            s.admin = Some(checked);
        }
    }

    /// Turns administrative access off for the session of `token` (the session stays).
    pub fn revoke_admin(&mut self, token: &str) {
        if let Some(Entry { session: s, .. }) = self.by_token.get_mut(token) {
            s.admin = None;
        }
    }

    /// Ends the session of `token` (logout): its login session is closed.
    pub fn remove(&mut self, token: &str) -> Option<Session> {
        self.by_token.remove(token).map(|e| e.session)
    }

    /// Forgets sessions idle longer than `idle`, older than their maximum age, or
    /// whose login session has ended.
    pub fn expire(&mut self, idle: Duration) {
        let now = self.clock.now();
        let max_age = self.max_age;
        self.by_token.retain(|_, Entry { session: s, login }| {
            now.duration_since(s.last_seen) <= idle
                && now.duration_since(s.created) <= max_age
                && !login.has_ended()
        });
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// Logins allowed per client within [`WINDOW`]: those that failed and those still
/// being checked. A client is an IPv4 address or an IPv6 /64 ([`client_key`]).
pub const PER_CLIENT: usize = 5;
/// Logins of one account name allowed from all clients together within [`WINDOW`]:
/// those that failed and those still being checked.
pub const PER_ACCOUNT: usize = 10;
/// The throttle's sliding window.
pub const WINDOW: Duration = Duration::from_secs(60);

// One client alone never reaches an account's limit, so it cannot lock anybody else out.
const _: () = assert!(PER_CLIENT < PER_ACCOUNT);

/// Who a login comes from, as far as the throttle is concerned: an IPv4 address, or
/// the /64 of an IPv6 address (a host or a site gets a whole /64 and may use every
/// address in it). IPv4 clients of a `[::]` socket arrive as `::ffff:a.b.c.d` and
/// count as their IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u64::MAX as u128))),
        v4 => v4,
    }
}

/// The account name as the throttle keeps it: no longer than any real one can be
/// (`LOGIN_NAME_MAX`), so that invented names of 64 KiB do not fill the memory.
fn account_key(account: &str) -> &str {
    let mut end = account.len().min(256);
    while !account.is_char_boundary(end) {
        end -= 1;
    }
    &account[..end]
}

/// A login counted by the throttle from the moment it starts; say how it ended with
/// [`Throttle::failed`], [`Throttle::succeeded`] or [`Throttle::cancel`]. One that is
/// merely dropped (the client went away) stays counted as a failure.
#[derive(Debug)]
#[must_use = "say how the login ended"]
pub struct Attempt {
    id: u64,
    client: IpAddr,
    account: String,
}

type Window = VecDeque<(Instant, u64)>;

/// Counts logins per client and per account name, in a sliding window. A login counts
/// from the moment it starts, so many sent at once cannot all reach PAM.
#[derive(Debug, Default)]
pub struct Throttle {
    per_client: HashMap<IpAddr, Window>,
    per_account: HashMap<String, Window>,
    next_id: u64,
}

impl Throttle {
    /// Starts a login of `account` from `client` and counts it, or says how many
    /// seconds to wait when the client or the account has reached its limit.
    pub fn begin(&mut self, client: IpAddr, account: &str, now: Instant) -> Result<Attempt, u64> {
        self.prune(now);
        let client = client_key(client);
        let account = account_key(account);
        let wait = |q: Option<&Window>, limit: usize| {
            let q = q?;
            (q.len() >= limit).then(|| {
                let oldest = q.get(q.len() - limit).map_or(now, |(t, _)| *t);
                (WINDOW.saturating_sub(now.duration_since(oldest)).as_secs()).max(1)
            })
        };
        let client_wait = wait(self.per_client.get(&client), PER_CLIENT);
        let account_wait = wait(self.per_account.get(account), PER_ACCOUNT);
        if let Some(secs) = client_wait.max(account_wait) {
            return Err(secs);
        }
        self.next_id += 1;
        let id = self.next_id;
        self.per_client
            .entry(client)
            .or_default()
            .push_back((now, id));
        self.per_account
            .entry(account.to_string())
            .or_default()
            .push_back((now, id));
        Ok(Attempt {
            id,
            client,
            account: account.to_string(),
        })
    }

    /// The login failed: it stays counted for the rest of the window.
    pub fn failed(&mut self, attempt: Attempt) {
        let _ = attempt;
    }

    /// The login succeeded: the client's failures are forgiven; the account's count
    /// drops this login but keeps other clients' failures.
    pub fn succeeded(&mut self, attempt: Attempt) {
        self.per_client.remove(&attempt.client);
        self.forget(&attempt);
    }

    /// The password was not checked (too many logins at once, PAM broken): the login
    /// does not count.
    pub fn cancel(&mut self, attempt: Attempt) {
        self.forget(&attempt);
    }

    fn forget(&mut self, attempt: &Attempt) {
        if let Some(q) = self.per_client.get_mut(&attempt.client) {
            q.retain(|(_, id)| *id != attempt.id);
        }
        if let Some(q) = self.per_account.get_mut(&attempt.account) {
            q.retain(|(_, id)| *id != attempt.id);
        }
    }

    fn prune(&mut self, now: Instant) {
        let keep = |q: &mut Window| {
            while q
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
            {
                q.pop_front();
            }
            !q.is_empty()
        };
        self.per_client.retain(|_, q| keep(q));
        self.per_account.retain(|_, q| keep(q));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn secret_comparison() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn idle_sessions_expire() {
        let clock = Arc::new(ManualClock::new());
        let mut s = Sessions::with_clock(clock.clone());
        let (token, csrf) = s.create("root").unwrap();
        let got = s.get(&token, Duration::from_secs(60), true).unwrap();
        assert_eq!(
            (got.user.as_str(), got.csrf.as_str()),
            ("root", csrf.as_str())
        );
        clock.advance(Duration::from_millis(5));
        assert!(
            s.get(&token, Duration::from_millis(5), false).is_some(),
            "idle exactly as long as allowed is still alive"
        );
        clock.advance(Duration::from_millis(15));
        assert!(s.get(&token, Duration::from_millis(5), true).is_none());
        assert!(s.is_empty(), "an expired session is forgotten");
        assert!(s.get("forged", Duration::from_secs(60), true).is_none());
    }

    #[test]
    fn only_touching_requests_keep_a_session_and_expiry_forgets_the_rest() {
        let clock = Arc::new(ManualClock::new());
        let mut s = Sessions::with_clock(clock.clone());
        let idle = Duration::from_secs(2);
        let (person, _) = s.create("root").unwrap();
        let (poller, _) = s.create("root").unwrap();
        for _ in 0..8 {
            assert!(s.get(&person, idle, true).is_some());
            let _ = s.get(&poller, idle, false);
            clock.advance(Duration::from_millis(400));
        }
        s.expire(idle);
        assert_eq!(s.len(), 1, "the poller's session is gone");
        assert!(s.get(&person, idle, false).is_some());
        assert!(s.get(&poller, idle, false).is_none());
    }

    #[test]
    fn throttle_counts_logins_from_their_start_per_client() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        // Still being checked, they count already.
        let running: Vec<_> = (0..PER_CLIENT)
            .map(|i| t.begin(a, &format!("u{i}"), now).unwrap())
            .collect();
        let wait = t.begin(a, "u9", now).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        let other = t
            .begin(b, "u0", now)
            .expect("other clients are not affected");
        t.cancel(other);
        for r in running {
            t.failed(r);
        }
        assert!(t.begin(a, "u9", now).is_err());
        let later = t.begin(a, "u9", now + WINDOW + Duration::from_secs(1));
        t.succeeded(later.expect("the window has passed"));
    }

    #[test]
    fn success_forgives_the_client_and_cancel_uncounts() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        for _ in 0..PER_CLIENT - 1 {
            let f = t.begin(a, "ops", now).unwrap();
            t.failed(f);
        }
        let busy = t.begin(a, "ops", now).unwrap();
        t.cancel(busy);
        let ok = t.begin(a, "ops", now).unwrap();
        t.succeeded(ok);
        for _ in 0..PER_CLIENT {
            let f = t.begin(a, "ops", now).unwrap();
            t.failed(f);
        }
        assert!(t.begin(a, "ops", now).is_err());
    }

    #[test]
    fn throttle_per_account_from_many_clients() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..PER_ACCOUNT {
            let f = t
                .begin(IpAddr::from([10, 0, 0, i as u8]), "ops", now)
                .unwrap();
            t.failed(f);
        }
        assert!(t.begin(IpAddr::from([10, 0, 1, 1]), "ops", now).is_err());
        let other = t.begin(IpAddr::from([10, 0, 1, 1]), "dev", now);
        t.succeeded(other.expect("other accounts are not affected"));
    }

    #[test]
    fn invented_account_names_are_kept_short() {
        let long = "é".repeat(40_000);
        let key = account_key(&long);
        assert!(key.len() <= 256 && long.starts_with(key));
        assert_eq!(account_key("ops"), "ops");
        let mut t = Throttle::default();
        let a = t
            .begin([10, 0, 0, 1].into(), &long, Instant::now())
            .unwrap();
        t.failed(a);
        assert!(t.per_account.keys().all(|k| k.len() <= 256));
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_64s() {
        let key = |s: &str| client_key(s.parse().unwrap()).to_string();
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(
            key("::ffff:192.0.2.7"),
            "192.0.2.7",
            "IPv4 on a [::] socket"
        );
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..PER_CLIENT {
            let ip: IpAddr = format!("2001:db8::{:x}", i + 1).parse().unwrap();
            let f = t.begin(ip, &format!("u{i}"), now).unwrap();
            t.failed(f);
        }
        let same_64: IpAddr = "2001:db8::99".parse().unwrap();
        assert!(t.begin(same_64, "x", now).is_err(), "one /64 is one client");
    }

    #[test]
    fn sessions_start_limited_and_admin_access_comes_and_goes() {
        let clock = Arc::new(ManualClock::new());
        let mut s = Sessions::with_clock(clock.clone());
        let idle = Duration::from_secs(60);
        let (token, _) = s.create("ops").unwrap();
        let (other, _) = s.create("ops").unwrap();
        assert!(!s.get(&token, idle, false).unwrap().is_admin());
        let at = clock.now();
        assert!(s.grant_admin(&token, at));
        let got = s.get(&token, idle, false).unwrap();
        assert_eq!(got.admin, Some(at));
        assert!(
            !s.get(&other, idle, false).unwrap().is_admin(),
            "only that session"
        );
        clock.advance(Duration::from_secs(5));
        s.renew_admin(&token, clock.now());
        assert_eq!(s.get(&token, idle, false).unwrap().admin, Some(clock.now()));
        s.revoke_admin(&token);
        assert!(!s.get(&token, idle, false).unwrap().is_admin());
        s.renew_admin(&token, clock.now());
        assert!(
            !s.get(&token, idle, false).unwrap().is_admin(),
            "a late recheck does not turn it back on"
        );
        s.remove(&token);
        assert!(!s.grant_admin(&token, at), "an ended session stays ended");
    }

    /// A login session whose closing the test can see: `closed()` is true once the
    /// console's session let go of it.
    fn watched() -> (LoginSession, impl Fn() -> bool) {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let closed = move || {
            matches!(
                rx.try_recv(),
                Err(std::sync::mpsc::TryRecvError::Disconnected)
            )
        };
        (LoginSession::closed_through(tx), closed)
    }

    #[test]
    fn the_login_session_closes_on_logout_expiry_and_when_the_store_goes() {
        let clock = Arc::new(ManualClock::new());
        let mut s = Sessions::with_clock(clock.clone()).max_age(Duration::from_secs(3600));
        let idle = Duration::from_secs(60);

        // Logout.
        let (login, closed) = watched();
        let (token, _) = s.create_with("ops", login).unwrap();
        let seen = s.get(&token, idle, true).unwrap();
        assert!(!closed(), "open while the session lives");
        drop(seen);
        assert!(
            !closed(),
            "a request's copy of the session does not close it"
        );
        s.remove(&token);
        assert!(closed(), "logout closes it");

        // Idle expiry noticed by a request.
        let (login, closed) = watched();
        let (token, _) = s.create_with("ops", login).unwrap();
        clock.advance(idle + Duration::from_secs(1));
        assert!(!closed(), "nobody has looked yet");
        assert!(s.get(&token, idle, true).is_none());
        assert!(closed(), "an expired session found by a request is closed");

        // Idle expiry by the sweep, and the absolute lifetime.
        let (idle_login, idle_closed) = watched();
        let (_idle_token, _) = s.create_with("ops", idle_login).unwrap();
        let (busy_login, busy_closed) = watched();
        let (busy, _) = s.create_with("ops", busy_login).unwrap();
        clock.advance(Duration::from_secs(50));
        assert!(s.get(&busy, idle, true).is_some());
        clock.advance(Duration::from_secs(20));
        s.expire(idle);
        assert!(idle_closed(), "the sweep closes idle sessions");
        assert!(!busy_closed(), "an active session stays open");
        for _ in 0..60 {
            clock.advance(Duration::from_secs(59));
            let _ = s.get(&busy, idle, true);
        }
        s.expire(idle);
        assert!(busy_closed(), "past its lifetime, however active");

        // The store dropped (the console stopping).
        let (login, closed) = watched();
        let _ = s.create_with("ops", login).unwrap();
        assert!(!closed());
        drop(s);
        assert!(closed(), "dropping the store closes every session");
    }

    #[test]
    fn sessions_end_after_their_lifetime_however_active() {
        let clock = Arc::new(ManualClock::new());
        let mut s = Sessions::with_clock(clock.clone()).max_age(Duration::from_secs(3600));
        let idle = Duration::from_secs(900);
        let (token, _) = s.create("ops").unwrap();
        for _ in 0..6 {
            clock.advance(Duration::from_secs(600));
            assert!(s.get(&token, idle, true).is_some());
        }
        clock.advance(Duration::from_secs(1));
        assert!(s.get(&token, idle, true).is_none(), "older than an hour");
        assert!(s.is_empty());
        let (old, _) = s.create("ops").unwrap();
        clock.advance(Duration::from_secs(3000));
        let (young, _) = s.create("ops").unwrap();
        clock.advance(Duration::from_secs(601));
        s.expire(Duration::from_secs(3600));
        assert!(s.get(&old, idle, false).is_none());
        assert!(s.get(&young, idle, false).is_some());
    }
}
