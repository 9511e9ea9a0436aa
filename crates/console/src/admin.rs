//! Limited and administrative access, as in Cockpit.
//!
//! Every session starts limited: it sees every page and every API answer, and changes
//! nothing. Administrative access is turned on for one session with the user's
//! password ([`turn_on`]): first the sudo policy must let the user run every command
//! as root ([`crate::sudo`]), then the password is checked by the login's own
//! authenticator (PAM), on the login's threads and under the login's throttle, so the
//! switch cannot be used to guess passwords faster than the login can. Both refusals
//! get the same answer, after the same delay.
//!
//! Every request that changes state passes [`authorize`] (the session layer,
//! [`crate::guard::require_session`], calls it; no handler does): without
//! administrative access it is refused, and with it the rights are checked again, the
//! admin group on every request and the sudo policy once its last answer is older than
//! [`POLICY_CACHE`]. A user taken out of the group or whose sudo rules were narrowed
//! loses the access at their next change.

use std::net::IpAddr;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::auth::{AuthError, Authenticator, Checks, Login, is_admin};
use crate::error::ApiError;
use crate::session::Session;
use crate::state::{Authed, Shared};
use crate::sudo::{AdminPolicy, PolicyError};

/// How long the sudo policy's answer for a session is trusted before it is asked
/// again (on the session's next state change).
pub const POLICY_CACHE: Duration = Duration::from_secs(60);

/// What a limited session is told when it tries to change something.
pub const LIMITED: &str = "administrative access is off: this session may look at \
    everything but change nothing. Turn on administrative access (the \u{201c}Limited \
    access\u{201d} button at the top of the page, or POST /api/v1/session/admin with your \
    password) and try again";

/// The check that turns administrative access on: the sudo policy first (an account
/// it refuses never has its password checked, as the login never checks the password
/// of an account outside the admin groups), then the login's authenticator.
#[derive(Debug)]
pub struct AdminCheck {
    pub policy: Arc<dyn AdminPolicy>,
    pub auth: Arc<dyn Authenticator>,
}

impl Authenticator for AdminCheck {
    fn authenticate(&self, user: &str, password: &str) -> Result<(), AuthError> {
        match self.policy.allows(user) {
            Ok(true) => self.auth.authenticate(user, password),
            Ok(false) => Err(AuthError::NotSudoer(user.to_string())),
            Err(e) => Err(AuthError::Policy(e.to_string())),
        }
    }

    fn fail_delay(&self) -> Duration {
        self.auth.fail_delay()
    }
}

/// Why administrative access was not turned on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TurnOnError {
    /// A wrong password or a policy that refuses: the answer does not say which.
    #[error(
        "administrative access refused: the password is wrong, or {0} may not administer \
         this node (that takes an admin group and sudo rules that allow every command as \
         root). Try again, or ask an administrator"
    )]
    Refused(String),
    /// Too many failed attempts (logins and these together) from this client or for
    /// this account.
    #[error("too many failed attempts; try again in {0} s")]
    Throttled(u64),
    /// Too many password checks running at once.
    #[error("the console is busy checking other passwords; try again in a few seconds")]
    Busy,
    /// The password or the policy could not be checked; nothing was decided.
    #[error("administrative access could not be checked: {0}")]
    Unavailable(String),
    /// The session ended while its password was being checked.
    #[error("the session ended; log in again")]
    Ended,
}

impl From<TurnOnError> for ApiError {
    fn from(e: TurnOnError) -> Self {
        match e {
            TurnOnError::Refused(_) => Self::Forbidden(e.to_string()),
            TurnOnError::Throttled(secs) => Self::TooManyRequests { retry_after: secs },
            TurnOnError::Busy | TurnOnError::Unavailable(_) => Self::Unavailable(e.to_string()),
            TurnOnError::Ended => Self::Unauthorized,
        }
    }
}

/// Turns administrative access on for `authed`'s session after checking `password`
/// and the sudo policy, counted by the login throttle as a login of the session's
/// user from `client`.
pub async fn turn_on(
    state: &Shared,
    client: IpAddr,
    authed: &Authed,
    password: String,
) -> Result<(), TurnOnError> {
    let user = authed.session.user.clone();
    let throttle = || {
        state
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    };
    let attempt = throttle()
        .begin(client, &user, state.clock.now())
        .map_err(|secs| {
            tracing::warn!(%user, %client, "administrative access throttled");
            TurnOnError::Throttled(secs)
        })?;
    let Some(slot) = state.checks.try_start() else {
        throttle().cancel(attempt);
        tracing::warn!(%user, %client, "administrative access not checked: too many checks at once");
        return Err(TurnOnError::Busy);
    };
    let check = Arc::new(AdminCheck {
        policy: state.policy.clone(),
        auth: state.authenticator.clone(),
    });
    let result = Checks::run(
        slot,
        check,
        state.config.disallowed_users.clone(),
        Login {
            user: user.clone(),
            password,
            client,
        },
    )
    .await;
    // A password check only (AdminCheck opens no session): nothing to keep.
    match result.map(drop) {
        Ok(()) => {
            throttle().succeeded(attempt);
            let granted = state
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .grant_admin(&authed.token, state.clock.now());
            if !granted {
                return Err(TurnOnError::Ended);
            }
            tracing::info!(%user, %client, "administrative access turned on");
            Ok(())
        }
        Err(e @ (AuthError::Unavailable(_) | AuthError::Pam(..) | AuthError::Policy(_))) => {
            throttle().cancel(attempt);
            tracing::error!(%user, %client, "administrative access could not be checked: {e}");
            Err(TurnOnError::Unavailable(format!(
                "{e}. Try again; if it keeps failing, see the journal"
            )))
        }
        Err(e) => {
            throttle().failed(attempt);
            tracing::warn!(%user, %client, "administrative access refused: {}", e.reason());
            Err(TurnOnError::Refused(user))
        }
    }
}

/// Turns administrative access off for `authed`'s session.
pub fn turn_off(state: &Shared, authed: &Authed) {
    state
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .revoke_admin(&authed.token);
    if authed.session.is_admin() {
        tracing::info!(user = %authed.session.user, "administrative access turned off");
    }
}

/// What checking a session's rights again found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    /// Still allowed; `asked` when the sudo policy was asked (not taken from the cache).
    Allowed { asked: bool },
    /// No longer root nor in an admin group.
    NotInGroup,
    /// The sudo policy no longer lets the user run every command as root.
    NotSudoer,
    /// The policy could not be learned.
    Unknown(PolicyError),
}

/// Checks `user`'s rights again: `in_group` is the admin group check of this request,
/// `policy` the sudo policy's answer when it was asked (`None`: the cached answer is
/// young enough).
pub fn recheck(in_group: bool, policy: Option<Result<bool, PolicyError>>) -> Recheck {
    match (in_group, policy) {
        (false, _) => Recheck::NotInGroup,
        (true, None) => Recheck::Allowed { asked: false },
        (true, Some(Ok(true))) => Recheck::Allowed { asked: true },
        (true, Some(Ok(false))) => Recheck::NotSudoer,
        (true, Some(Err(e))) => Recheck::Unknown(e),
    }
}

/// Lets a request that changes state through only when its session has administrative
/// access and still may: the admin group is checked on every call, the sudo policy
/// when its answer is [`POLICY_CACHE`] old. Rights found revoked turn the access off.
pub async fn authorize(state: &Shared, token: &str, session: &Session) -> Result<(), ApiError> {
    let Some(checked) = session.admin else {
        return Err(ApiError::Forbidden(LIMITED.into()));
    };
    let now = state.clock.now();
    let ask = now.saturating_duration_since(checked) >= POLICY_CACHE;
    let user = session.user.clone();
    let groups = state.config.admin_groups.clone();
    let policy = state.policy.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        let in_group = is_admin(&user, &groups);
        let answer = (in_group && ask).then(|| policy.allows(&user));
        recheck(in_group, answer)
    })
    .await
    .map_err(|e| {
        ApiError::Unavailable(format!(
            "checking administrative access: the check's thread failed ({e}); try again"
        ))
    })?;
    let user = &session.user;
    let revoke = |why: String| {
        state
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .revoke_admin(token);
        tracing::warn!(%user, "administrative access turned off: {why}");
        ApiError::Forbidden(format!(
            "{why}: administrative access was turned off. Ask an administrator to restore \
             your rights, then turn it on again"
        ))
    };
    match verdict {
        Recheck::Allowed { asked } => {
            if asked {
                state
                    .sessions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .renew_admin(token, now);
            }
            Ok(())
        }
        Recheck::NotInGroup => Err(revoke(format!(
            "{user} is no longer root or in an admin group ({})",
            state.config.admin_groups.join(", ")
        ))),
        Recheck::NotSudoer => Err(revoke(format!(
            "sudo no longer lets {user} run every command as root"
        ))),
        Recheck::Unknown(e) => {
            tracing::error!(%user, "administrative access could not be checked again: {e}");
            Err(ApiError::Unavailable(format!(
                "could not check whether {user} may still administer the node: {e}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::clock::ManualClock;
    use crate::config::Config;
    use crate::metrics::Metrics;
    use crate::state::AppState;

    /// Allows unless told otherwise; counts the questions.
    #[derive(Debug, Default)]
    struct Policy {
        answer: Mutex<Option<Result<bool, PolicyError>>>,
        asked: AtomicUsize,
    }

    impl AdminPolicy for Policy {
        fn allows(&self, _: &str) -> Result<bool, PolicyError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.answer.lock().unwrap().clone().unwrap_or(Ok(true))
        }
    }

    #[derive(Debug)]
    struct Password;

    impl Authenticator for Password {
        fn authenticate(&self, _: &str, password: &str) -> Result<(), AuthError> {
            if password == "right" {
                Ok(())
            } else {
                Err(AuthError::BadCredentials)
            }
        }

        fn fail_delay(&self) -> Duration {
            Duration::from_millis(20)
        }
    }

    fn state(policy: Arc<Policy>) -> (Shared, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        let config = Config {
            disallowed_users: Vec::new(),
            ..Config::default()
        };
        let state = AppState::with_checks(
            config,
            Arc::new(Metrics::default()),
            clock.clone(),
            Arc::new(Password),
            policy,
        );
        (state, clock)
    }

    fn login(state: &Shared, user: &str) -> Authed {
        let mut sessions = state.sessions.lock().unwrap();
        let (token, _) = sessions.create(user).unwrap();
        let session = sessions
            .get(&token, Duration::from_secs(60), false)
            .unwrap();
        Authed { token, session }
    }

    fn current(state: &Shared, authed: &Authed) -> Session {
        state
            .sessions
            .lock()
            .unwrap()
            .get(&authed.token, Duration::from_secs(900), false)
            .unwrap()
    }

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn rechecks_decide_in_order_group_then_policy() {
        let err = PolicyError::Unexpected {
            user: "ops".into(),
            command: "sudo".into(),
            printed: "?".into(),
        };
        for (in_group, policy, want) in [
            (false, Some(Ok(true)), Recheck::NotInGroup),
            (false, None, Recheck::NotInGroup),
            (true, None, Recheck::Allowed { asked: false }),
            (true, Some(Ok(true)), Recheck::Allowed { asked: true }),
            (true, Some(Ok(false)), Recheck::NotSudoer),
            (true, Some(Err(err.clone())), Recheck::Unknown(err.clone())),
        ] {
            assert_eq!(
                recheck(in_group, policy.clone()),
                want,
                "{in_group} {policy:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_limited_session_is_refused_and_the_policy_is_asked_at_most_once_a_minute() {
        let policy = Arc::new(Policy::default());
        let (state, clock) = state(policy.clone());
        // Root is in every admin group, so only the policy decides here.
        let authed = login(&state, "root");
        let refused = authorize(&state, &authed.token, &authed.session)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("administrative access is off"),
            "{refused}"
        );
        assert_eq!(policy.asked.load(Ordering::SeqCst), 0);

        turn_on(&state, CLIENT, &authed, "right".into())
            .await
            .unwrap();
        assert_eq!(
            policy.asked.load(Ordering::SeqCst),
            1,
            "asked when turned on"
        );
        let session = current(&state, &authed);
        assert!(session.is_admin());
        for _ in 0..5 {
            clock.advance(Duration::from_secs(10));
            authorize(&state, &authed.token, &current(&state, &authed))
                .await
                .unwrap();
        }
        assert_eq!(
            policy.asked.load(Ordering::SeqCst),
            1,
            "50 s: the answer is kept"
        );
        clock.advance(Duration::from_secs(10));
        authorize(&state, &authed.token, &current(&state, &authed))
            .await
            .unwrap();
        assert_eq!(policy.asked.load(Ordering::SeqCst), 2, "60 s: asked again");

        // The rules change: within the cache time the access goes.
        *policy.answer.lock().unwrap() = Some(Ok(false));
        clock.advance(Duration::from_secs(30));
        authorize(&state, &authed.token, &current(&state, &authed))
            .await
            .unwrap();
        clock.advance(Duration::from_secs(30));
        let e = authorize(&state, &authed.token, &current(&state, &authed))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("sudo no longer lets root"), "{e}");
        assert!(!current(&state, &authed).is_admin(), "turned off");
    }

    #[tokio::test]
    async fn a_policy_that_cannot_be_learned_refuses_without_turning_access_off() {
        let policy = Arc::new(Policy::default());
        let (state, clock) = state(policy.clone());
        let authed = login(&state, "root");
        turn_on(&state, CLIENT, &authed, "right".into())
            .await
            .unwrap();
        *policy.answer.lock().unwrap() = Some(Err(PolicyError::Unexpected {
            user: "root".into(),
            command: "sudo".into(),
            printed: "?".into(),
        }));
        clock.advance(POLICY_CACHE);
        let e = authorize(&state, &authed.token, &current(&state, &authed))
            .await
            .unwrap_err();
        assert_eq!(
            e.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "{e}"
        );
        assert!(current(&state, &authed).is_admin());
        // Nor can it be turned on: that is no refusal and does not count as one.
        let again = login(&state, "root");
        let e = turn_on(&state, CLIENT, &again, "wrong".into())
            .await
            .unwrap_err();
        assert!(matches!(e, TurnOnError::Unavailable(_)), "{e:?}");
        assert!(!current(&state, &again).is_admin());
    }

    #[tokio::test]
    async fn a_wrong_password_and_a_refusing_policy_get_the_same_answer() {
        let policy = Arc::new(Policy::default());
        let (state, _) = state(policy.clone());
        let authed = login(&state, "root");
        let wrong = turn_on(&state, CLIENT, &authed, "wrong".into())
            .await
            .unwrap_err();
        *policy.answer.lock().unwrap() = Some(Ok(false));
        let refused = turn_on(&state, CLIENT, &authed, "right".into())
            .await
            .unwrap_err();
        assert_eq!(wrong, refused);
        assert_eq!(
            ApiError::from(wrong).status(),
            axum::http::StatusCode::FORBIDDEN
        );
        assert!(!current(&state, &authed).is_admin());
    }

    #[tokio::test]
    async fn turning_on_counts_with_the_login_throttle() {
        let (state, _) = state(Arc::new(Policy::default()));
        let authed = login(&state, "root");
        for _ in 0..crate::session::PER_CLIENT {
            let e = turn_on(&state, CLIENT, &authed, "wrong".into())
                .await
                .unwrap_err();
            assert!(matches!(e, TurnOnError::Refused(_)), "{e:?}");
        }
        let e = turn_on(&state, CLIENT, &authed, "right".into())
            .await
            .unwrap_err();
        assert!(matches!(e, TurnOnError::Throttled(_)), "{e:?}");
        assert!(!current(&state, &authed).is_admin());
    }
}
