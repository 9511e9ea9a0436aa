//! The login form, PAM check, session cookie and logout.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::auth::{AuthError, authenticate};
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
    let throttled = state
        .throttle
        .lock()
        .ok()
        .and_then(|mut t| t.retry_after(ip, state.clock.now()));
    if let Some(secs) = throttled {
        tracing::warn!(client = %ip, user = %creds.username, "login throttled");
        let mut resp = login_page(
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!("Too many failed logins. Try again in {secs} s.")),
            &creds.username,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return resp;
    }
    let service = state.config.pam_service.clone();
    let groups = state.config.admin_groups.clone();
    let (user, password) = (creds.username.clone(), creds.password);
    let result =
        tokio::task::spawn_blocking(move || authenticate(&service, &user, &password, &groups))
            .await
            .unwrap_or_else(|e| {
                Err(AuthError::Pam(
                    state.config.pam_service.clone(),
                    e.to_string(),
                ))
            });
    let user = creds.username;
    match result {
        Ok(()) => {
            if let Ok(mut t) = state.throttle.lock() {
                t.record_success(ip);
            }
            let created = state.sessions.lock().ok().and_then(|mut s| s.create(&user));
            let Some((token, _csrf)) = created else {
                return ApiError::Unavailable("could not start a session".into()).into_response();
            };
            tracing::info!(client = %ip, user = %user, "login");
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict");
            let mut resp = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            resp
        }
        Err(AuthError::Pam(service, e)) => {
            tracing::error!(%service, "PAM failed: {e}");
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
            if let Ok(mut t) = state.throttle.lock() {
                t.record_failure(ip, state.clock.now());
            }
            tracing::warn!(client = %ip, user = %user, "login failed: {e}");
            let shown = match e {
                AuthError::NotAdmin(..) => "This account may not administer the node.",
                _ => "Wrong user name or password.",
            };
            login_page(StatusCode::UNAUTHORIZED, Some(shown.into()), &user)
        }
    }
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
