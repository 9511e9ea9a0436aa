//! The login form, PAM check, session cookie and logout.
//!
//! The journal names the user of a successful login, an account that exists. A login
//! refused, throttled or turned away as busy is logged with [`user_tag`] instead of
//! the name typed: people type passwords into the user name field, and the console
//! shows the journal.

use std::fmt::Write as _;
use std::sync::{OnceLock, PoisonError};

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{AuthError, Checks, Login, MAX_AT_ONCE};
use crate::error::ApiError;
use crate::guard::{origin_allowed, session_cookie};
use crate::pages::render;
use crate::session::COOKIE;
use crate::state::{Authed, ClientAddr, Shared};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    hostname: String,
    error: Option<String>,
    username: String,
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn login_page(status: StatusCode, error: Option<String>, username: &str) -> Response {
    let page = LoginPage {
        hostname: hostname(),
        error,
        username: username.to_string(),
    };
    (status, render(&page)).into_response()
}

/// `GET /login`.
pub async fn page(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let idle = state.config.idle_timeout();
    let logged_in = session_cookie(&headers)
        .and_then(|t| state.sessions.lock().ok()?.get(&t, idle, false))
        .is_some();
    if logged_in {
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, None, "")
}

/// The key of [`user_tag`]: random for each start of the console, kept only in
/// memory. `None` when the kernel gave no random bytes.
fn tag_key() -> Option<&'static [u8; 32]> {
    static KEY: OnceLock<Option<[u8; 32]>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).ok().map(|()| key)
    })
    .as_ref()
}

/// HMAC-SHA-256 (RFC 2104) of `message` under a 32-byte `key`.
fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let pad = |byte: u8| {
        let mut block = [byte; 64];
        for (b, k) in block.iter_mut().zip(key) {
            *b ^= k;
        }
        block
    };
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// What the journal says instead of the user name of a login that did not succeed: 8
/// hex digits of an HMAC-SHA-256 of the name under a key made at each start and never
/// written anywhere. The same name gives the same tag until the console restarts, so
/// repeated attempts on one name can be told apart from a spray over many, but a tag
/// in the journal cannot be turned back into the name, nor a guess checked against
/// it, without the key. `unknown` when there was no randomness for the key.
pub fn user_tag(user: &str) -> String {
    let Some(key) = tag_key() else {
        return "unknown".into();
    };
    let mac = hmac_sha256(key, user.as_bytes());
    mac.iter()
        .take(4)
        .fold(String::with_capacity(8), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

/// `POST /login`: `username` and `password`, form-encoded.
pub async fn submit(
    State(state): State<Shared>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !origin_allowed(&headers, state.tls) {
        return ApiError::Forbidden("login from a foreign origin refused".into()).into_response();
    }
    let creds: Credentials = match crate::error::parse_form(&body) {
        Ok(c) => c,
        Err(e) => return login_page(StatusCode::BAD_REQUEST, Some(e.to_string()), ""),
    };
    let ip = client.ip();
    let user = creds.username;
    let begun = state
        .throttle
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .begin(ip, &user, state.clock.now());
    let attempt = match begun {
        Ok(a) => a,
        Err(secs) => {
            tracing::warn!(client = %ip, user_tag = %user_tag(&user), "login throttled");
            return with_retry_after(
                login_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(format!("Too many failed logins. Try again in {secs} s.")),
                    &user,
                ),
                secs,
            );
        }
    };
    let Some(slot) = state.checks.try_start() else {
        state
            .throttle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cancel(attempt);
        tracing::warn!(
            client = %ip,
            user_tag = %user_tag(&user),
            "login refused: {MAX_AT_ONCE} logins are being checked already"
        );
        return with_retry_after(
            login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(
                    "The console is busy checking other logins. Try again in a few seconds.".into(),
                ),
                &user,
            ),
            BUSY_RETRY_SECS,
        );
    };
    let result = Checks::run(
        slot,
        state.authenticator.clone(),
        state.config.disallowed_users.clone(),
        Login {
            user: user.clone(),
            password: creds.password,
            client: ip,
        },
    )
    .await;
    let mut throttle = state
        .throttle
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(pam) => {
            throttle.succeeded(attempt);
            drop(throttle);
            // Without a console session the PAM session is dropped, and so closed.
            let created = state
                .sessions
                .lock()
                .ok()
                .and_then(|mut s| s.create_with(&user, pam));
            let Some((token, _csrf)) = created else {
                return ApiError::Unavailable(
                    "could not start a session (no randomness for its token); try again".into(),
                )
                .into_response();
            };
            tracing::info!(client = %ip, user = %user, "login");
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
            let mut resp = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(e @ AuthError::Unavailable(_)) => {
            throttle.cancel(attempt);
            drop(throttle);
            tracing::error!(client = %ip, user_tag = %user_tag(&user), "login not possible: {e}");
            with_retry_after(
                login_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some(
                        "Login is not possible right now: the console could not check the \
                         password (see the journal). Try again in a few seconds."
                            .into(),
                    ),
                    &user,
                ),
                BUSY_RETRY_SECS,
            )
        }
        Err(e @ AuthError::Pam(..)) => {
            throttle.cancel(attempt);
            drop(throttle);
            tracing::error!(client = %ip, user_tag = %user_tag(&user), "login not possible: {e}");
            login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(
                    "Login is not possible: the PAM configuration is broken (see the journal)."
                        .into(),
                ),
                &user,
            )
        }
        Err(e) => {
            throttle.failed(attempt);
            drop(throttle);
            // Never the name typed, nor the error, which names it.
            tracing::warn!(
                client = %ip,
                user_tag = %user_tag(&user),
                "login failed: {}",
                e.reason()
            );
            // Whatever the reason, the same answer: a wrong password, a disallowed
            // user and an account outside the admin groups look alike.
            login_page(
                StatusCode::UNAUTHORIZED,
                Some("Wrong user name or password.".into()),
                &user,
            )
        }
    }
}

/// Seconds a client is asked to wait when too many logins are being checked.
const BUSY_RETRY_SECS: u64 = 2;

fn with_retry_after(mut resp: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// `POST /logout`.
pub async fn logout(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    if let Ok(mut s) = state.sessions.lock() {
        s.remove(&authed.token);
    }
    tracing::info!(user = %authed.session.user, "logout");
    let mut resp = Redirect::to("/login").into_response();
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_tag_is_short_stable_and_keyed() {
        let tag = user_tag("Hunter2-typed-in-the-wrong-field");
        assert_eq!(tag.len(), 8, "{tag}");
        assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()), "{tag}");
        assert_eq!(user_tag("Hunter2-typed-in-the-wrong-field"), tag);
        assert_ne!(user_tag("Hunter2-typed-in-the-wrong-fielD"), tag);
        // Not the bare hash of the name: without the key nobody can check a guess.
        use sha2::{Digest, Sha256};
        let bare = Sha256::digest(b"Hunter2-typed-in-the-wrong-field");
        let bare: String = bare.iter().take(4).map(|b| format!("{b:02x}")).collect();
        assert_ne!(tag, bare);
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2 has a short key; padded with zeros to 32 bytes it is
        // the same HMAC key.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
