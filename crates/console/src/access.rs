//! The switch between limited and administrative access ([`crate::admin`]): the form
//! in every page's top bar, and the same by the API.
//!
//! - `POST /api/v1/session/admin`, JSON `{"password": "…"}` or the form field
//!   `password`: turns administrative access on; answers the session as
//!   `GET /api/v1/session` does, `"admin": true`. A wrong password and sudo rules that
//!   do not allow every command as root both answer 403 with the same message.
//! - `DELETE /api/v1/session/admin`: turns it off; answers the session, `"admin": false`.
//! - `POST /session/admin` (fields `password`, `back`) and `POST /session/admin/off`
//!   (field `back`): the pages' forms; they go back to the page named by `back`.
//!
//! Like every state change they need the session's CSRF token; they are the only ones
//! a limited session may make besides logging out ([`crate::guard::LIMITED_MAY`]).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::admin::{self, TurnOnError};
use crate::api::{ok, session_view};
use crate::error::{ApiError, parse_form, parse_json};
use crate::pages::{NAV, PageCtx, error_page};
use crate::state::{Authed, ClientAddr, Shared};

/// Seconds a client is asked to wait when too many passwords are being checked.
const BUSY_RETRY_SECS: u64 = 2;

#[derive(Deserialize)]
struct TurnOn {
    password: String,
}

#[derive(Deserialize)]
struct PageForm {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    back: String,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The page a form asked to go back to: one of the navigation's, the overview
/// otherwise (never a path the client made up).
pub fn back_to(back: &str) -> &'static str {
    NAV.iter()
        .map(|(path, _)| *path)
        .find(|path| *path == back)
        .unwrap_or("/")
}

fn retry_after(e: &TurnOnError) -> Option<u64> {
    match e {
        TurnOnError::Throttled(secs) => Some(*secs),
        TurnOnError::Busy => Some(BUSY_RETRY_SECS),
        _ => None,
    }
}

fn with_retry_after(mut resp: Response, secs: Option<u64>) -> Response {
    if let Some(v) = secs.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// `POST /api/v1/session/admin`.
pub async fn api_on(
    State(state): State<Shared>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Extension(authed): Extension<Authed>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = if is_json(&headers) {
        parse_json::<TurnOn>(&body)
    } else {
        parse_form::<TurnOn>(&body)
    };
    let request = match parsed {
        Ok(r) => r,
        Err(e) => {
            return ApiError::BadRequest(format!(
                "{e}; send the field password (JSON {{\"password\": \"…\"}} or a form)"
            ))
            .into_response();
        }
    };
    match admin::turn_on(&state, client.ip(), &authed, request.password).await {
        Ok(()) => ok("Session", session_view(&authed, true)),
        Err(e) => {
            let retry = retry_after(&e);
            with_retry_after(ApiError::from(e).into_response(), retry)
        }
    }
}

/// `DELETE /api/v1/session/admin`.
pub async fn api_off(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
) -> Response {
    admin::turn_off(&state, &authed);
    ok("Session", session_view(&authed, false))
}

/// `POST /session/admin`: the top bar's form.
pub async fn page_on(
    State(state): State<Shared>,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form: PageForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(PageCtx::new(&authed, "/"), &e, "/"),
    };
    let back = back_to(&form.back);
    let Some(password) = form.password else {
        let e = ApiError::BadRequest("the form has no password field; reload the page".into());
        return error_page(PageCtx::new(&authed, back), &e, back);
    };
    match admin::turn_on(&state, client.ip(), &authed, password).await {
        Ok(()) => Redirect::to(back).into_response(),
        Err(e) => {
            let retry = retry_after(&e);
            let page = PageCtx::new(&authed, back);
            with_retry_after(error_page(page, &e.into(), back), retry)
        }
    }
}

/// `POST /session/admin/off`.
pub async fn page_off(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let back = parse_form::<PageForm>(&body)
        .map(|f| back_to(&f.back))
        .unwrap_or("/");
    admin::turn_off(&state, &authed);
    Redirect::to(back).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn going_back_only_to_the_console_s_own_pages() {
        assert_eq!(back_to("/vms"), "/vms");
        assert_eq!(back_to("/"), "/");
        for other in [
            "",
            "//evil.example",
            "https://evil.example/",
            "/vms/x",
            "/login",
        ] {
            assert_eq!(back_to(other), "/", "{other}");
        }
    }
}
