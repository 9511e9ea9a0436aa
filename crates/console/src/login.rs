//! The login form, PAM check, session cookie and logout.

use std::sync::PoisonError;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{AuthError, Checks, MAX_AT_ONCE};
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
            tracing::warn!(client = %ip, user = %user, "login throttled");
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
        tracing::warn!(client = %ip, user = %user, "login refused: {MAX_AT_ONCE} logins are being checked already");
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
        user.clone(),
        creds.password,
    )
    .await;
    let mut throttle = state
        .throttle
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(()) => {
            throttle.succeeded(attempt);
            drop(throttle);
            let created = state.sessions.lock().ok().and_then(|mut s| s.create(&user));
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
            tracing::error!("login not possible: {e}");
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
            tracing::error!("login not possible: {e}");
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
            tracing::warn!(client = %ip, user = %user, "login failed: {e}");
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
