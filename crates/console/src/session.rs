//! Logged-in sessions and the throttle on failed logins.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

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
}

/// All sessions, keyed by their cookie value.
#[derive(Debug)]
pub struct Sessions {
    by_token: HashMap<String, Session>,
    /// What idle times are measured with.
    clock: Arc<dyn Clock>,
}

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
        }
    }

    /// Starts a session for `user`; returns its cookie value and CSRF token.
    pub fn create(&mut self, user: &str) -> Option<(String, String)> {
        let token = random_token();
        let csrf = random_token();
        if token.is_empty() || csrf.is_empty() || self.by_token.contains_key(&token) {
            return None;
        }
        let now = self.clock.now();
        self.by_token.insert(
            token.clone(),
            Session {
                user: user.to_string(),
                csrf: csrf.clone(),
                created: now,
                last_seen: now,
            },
        );
        Some((token, csrf))
    }

    /// The session of `token` if it has not been idle longer than `idle`; `touch`
    /// counts this request as activity.
    pub fn get(&mut self, token: &str, idle: Duration, touch: bool) -> Option<Session> {
        let now = self.clock.now();
        let session = self.by_token.get_mut(token)?;
        if now.duration_since(session.last_seen) > idle {
            self.by_token.remove(token);
            return None;
        }
        if touch {
            session.last_seen = now;
        }
        Some(session.clone())
    }

    pub fn remove(&mut self, token: &str) -> Option<Session> {
        self.by_token.remove(token)
    }

    /// Forgets sessions idle longer than `idle`.
    pub fn expire(&mut self, idle: Duration) {
        let now = self.clock.now();
        self.by_token
            .retain(|_, s| now.duration_since(s.last_seen) <= idle);
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// Failed logins allowed per client address within [`WINDOW`].
pub const PER_CLIENT: usize = 5;
/// Failed logins allowed from all clients together within [`WINDOW`].
pub const OVERALL: usize = 30;
/// The throttle's sliding window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts failed logins per client and overall, in a sliding window.
#[derive(Debug, Default)]
pub struct Throttle {
    per_client: HashMap<IpAddr, VecDeque<Instant>>,
    overall: VecDeque<Instant>,
}

impl Throttle {
    /// Seconds the client must wait before trying again, if it is throttled.
    pub fn retry_after(&mut self, client: IpAddr, now: Instant) -> Option<u64> {
        self.prune(now);
        let wait = |q: &VecDeque<Instant>, limit: usize| {
            (q.len() >= limit).then(|| {
                let oldest = q.get(q.len() - limit).copied().unwrap_or(now);
                (WINDOW.saturating_sub(now.duration_since(oldest)).as_secs()).max(1)
            })
        };
        let client_wait = self
            .per_client
            .get(&client)
            .and_then(|q| wait(q, PER_CLIENT));
        let overall_wait = wait(&self.overall, OVERALL);
        client_wait.max(overall_wait)
    }

    pub fn record_failure(&mut self, client: IpAddr, now: Instant) {
        self.per_client.entry(client).or_default().push_back(now);
        self.overall.push_back(now);
    }

    /// A successful login clears the client's failures.
    pub fn record_success(&mut self, client: IpAddr) {
        self.per_client.remove(&client);
    }

    fn prune(&mut self, now: Instant) {
        let old = |t: &Instant| now.duration_since(*t) > WINDOW;
        while self.overall.front().is_some_and(old) {
            self.overall.pop_front();
        }
        self.per_client.retain(|_, q| {
            while q.front().is_some_and(old) {
                q.pop_front();
            }
            !q.is_empty()
        });
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
    fn throttle_per_client_then_overall() {
        let mut t = Throttle::default();
        let now = Instant::now();
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..PER_CLIENT {
            assert_eq!(t.retry_after(a, now), None);
            t.record_failure(a, now);
        }
        let wait = t.retry_after(a, now).unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(
            t.retry_after(b, now),
            None,
            "other clients are not affected"
        );
        assert_eq!(
            t.retry_after(a, now + WINDOW + Duration::from_secs(1)),
            None
        );
        let mut t = Throttle::default();
        for i in 0..OVERALL {
            t.record_failure(IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]), now);
        }
        assert!(t.retry_after(b, now).is_some(), "overall limit reached");
        t.record_success(a);
    }
}
