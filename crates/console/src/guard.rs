//! What a request must pass before a handler sees it: a live session, the CSRF
//! token on state changes, an `Origin` of this console, and administrative access
//! for every change but the few a limited session may make ([`LIMITED_MAY`]).
//! Imports the state, the sessions and the access check, never a page.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::admin;
use crate::error::ApiError;
use crate::limits::{Standing, is_body_timeout};
use crate::session::{COOKIE, same_secret};
use crate::state::{Authed, Shared};

/// Largest request body accepted (forms and JSON are small).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The Content-Security-Policy of every page: our own scripts and styles only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Sets [`CSP`] with inline styles allowed on `resp`, for the pages whose widgets
/// set them (xterm.js adds `<style>` elements): the terminal and the VM page (its
/// serial console). Scripts stay restricted to our own files.
pub fn allow_inline_styles(resp: &mut Response) {
    let csp = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'");
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Whether the request's `Origin` (if any) is this console itself. Browsers send
/// `Origin` on every cross-site POST, WebSocket and fetch; a foreign one is refused,
/// and so is `null`, which sandboxed frames, `data:` pages and some redirects send.
/// The console's pages are served with `Referrer-Policy: same-origin`, under which a
/// browser sends the real origin with the console's own form posts (under
/// `no-referrer` it would send `null`).
pub fn origin_allowed(headers: &HeaderMap, tls: bool) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let scheme = if tls { "https" } else { "http" };
    origin
        .to_str()
        .is_ok_and(|o| o == format!("{scheme}://{host}"))
}

/// The state changes a limited session may make: logging out, and turning its own
/// administrative access on or off (method, path). Every other request that changes
/// state (any method but `GET`, `HEAD` and `OPTIONS`) or upgrades its connection (the
/// terminal's WebSocket) needs administrative access, so a route added later is
/// guarded without being named anywhere.
pub const LIMITED_MAY: &[(&str, &str)] = &[
    ("POST", "/logout"),
    ("POST", "/api/v1/session/admin"),
    ("DELETE", "/api/v1/session/admin"),
    ("POST", "/session/admin"),
    ("POST", "/session/admin/off"),
];

/// Whether a request needs administrative access ([`admin::authorize`]).
pub fn needs_admin(method: &Method, path: &str, upgrade: bool) -> bool {
    let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    (changes_state || upgrade)
        && !LIMITED_MAY
            .iter()
            .any(|(m, p)| *m == method.as_str() && *p == path)
}

fn wants_html(req: &Request) -> bool {
    !req.uri().path().starts_with("/api/") && req.method() == Method::GET
}

/// Requests that keep the session alive only when a person acts: streams and the
/// live pages' polling do not count as activity.
fn is_background(req: &Request) -> bool {
    req.uri().path().ends_with("/stream")
        || req
            .headers()
            .get("x-hvnode-background")
            .is_some_and(|v| v == "1")
}

/// Lets through only requests of a logged-in session; state changes must also carry
/// the session's CSRF token, come from this console when they have an `Origin`, and,
/// unless a limited session may make them, have administrative access, whose rights
/// are checked again here ([`admin::authorize`]).
pub async fn require_session(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let idle = state.config.idle_timeout();
    let token = session_cookie(req.headers());
    let session = token.as_ref().and_then(|t| {
        state
            .sessions
            .lock()
            .ok()?
            .get(t, idle, !is_background(&req))
    });
    let (Some(token), Some(session)) = (token, session) else {
        return if wants_html(&req) {
            Redirect::to("/login").into_response()
        } else {
            ApiError::Unauthorized.into_response()
        };
    };
    // A logged-in client's connection no longer counts against its address's cap.
    if let Some(standing) = req.extensions().get::<Standing>() {
        standing.logged_in();
    }
    let is_upgrade = req.headers().contains_key(header::UPGRADE);
    let is_stream = req.uri().path().ends_with("/stream");
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if (changes_state || is_upgrade || is_stream) && !origin_allowed(req.headers(), state.tls) {
        tracing::warn!(user = %session.user, path = %req.uri().path(), "foreign Origin refused");
        return ApiError::Forbidden("request from a foreign origin refused".into()).into_response();
    }
    let mut req = req;
    if changes_state {
        match check_csrf(req, &session.csrf).await {
            Ok(r) => req = r,
            Err(resp) => return resp,
        }
    }
    if needs_admin(req.method(), req.uri().path(), is_upgrade) {
        if let Err(e) = admin::authorize(&state, &token, &session).await {
            tracing::info!(user = %session.user, path = %req.uri().path(), "refused: {e}");
            return e.into_response();
        }
    }
    req.extensions_mut().insert(Authed { token, session });
    next.run(req).await
}

/// Checks the CSRF token in the `X-CSRF-Token` header or the form field `csrf`; gives
/// back the request with its body intact.
async fn check_csrf(req: Request, expected: &str) -> Result<Request, Response> {
    let refused = || ApiError::Forbidden("missing or wrong CSRF token".into()).into_response();
    if let Some(v) = req.headers().get("x-csrf-token") {
        return if v.to_str().is_ok_and(|v| same_secret(v, expected)) {
            Ok(req)
        } else {
            Err(refused())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refused());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT).await.map_err(|e| {
        if is_body_timeout(&e) {
            (StatusCode::REQUEST_TIMEOUT, e.to_string()).into_response()
        } else {
            (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
        }
    })?;
    let found = form_urlencoded_field(&bytes, "csrf");
    if !found.is_some_and(|v| same_secret(&v, expected)) {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The value of the first field `name` of an `application/x-www-form-urlencoded`
/// body, decoded; `None` if the body is malformed or has no such field. Pure, so the
/// fuzz target `console_request` can call it.
pub fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=1; __Host-hvnode-session=abc; b=2")]);
        assert_eq!(session_cookie(&h).as_deref(), Some("abc"));
        assert_eq!(session_cookie(&headers(&[("cookie", "x=y")])), None);
    }

    #[test]
    fn origin_must_be_this_console() {
        let same = headers(&[("host", "node:9090"), ("origin", "https://node:9090")]);
        assert!(origin_allowed(&same, true));
        assert!(!origin_allowed(&same, false), "scheme matters");
        let foreign = headers(&[("host", "node:9090"), ("origin", "https://evil.example")]);
        assert!(!origin_allowed(&foreign, true));
        assert!(origin_allowed(&headers(&[("host", "node:9090")]), true));
        let null = headers(&[("host", "node:9090"), ("origin", "null")]);
        assert!(
            !origin_allowed(&null, true),
            "a sandboxed frame or data: page"
        );
        assert!(!origin_allowed(
            &headers(&[("origin", "https://node:9090")]),
            true
        ));
    }

    #[test]
    fn every_change_but_the_session_s_own_needs_admin_access() {
        let (get, post, put, delete) = (Method::GET, Method::POST, Method::PUT, Method::DELETE);
        for (method, path, upgrade, want) in [
            (&get, "/vms", false, false),
            (&get, "/api/v1/logs/stream", false, false),
            (&Method::HEAD, "/", false, false),
            (&get, "/terminal/socket", true, true),
            (&post, "/vms/test/start", false, true),
            (&post, "/api/v1/services/ssh.service/stop", false, true),
            (&post, "/registration/register", false, true),
            (&put, "/api/v1/node/update/upload/x.update.tar", false, true),
            (&post, "/a/route/added/later", false, true),
            (&delete, "/api/v1/vms/test", false, true),
            (&post, "/logout", false, false),
            (&post, "/api/v1/session/admin", false, false),
            (&delete, "/api/v1/session/admin", false, false),
            (&put, "/api/v1/session/admin", false, true),
            (&post, "/session/admin", false, false),
            (&post, "/session/admin/off", false, false),
            (&post, "/session/admin/", false, true),
            (&post, "/session/%61dmin", false, true),
        ] {
            assert_eq!(
                needs_admin(method, path, upgrade),
                want,
                "{method} {path} upgrade={upgrade}"
            );
        }
    }

    #[test]
    fn form_field_extraction() {
        assert_eq!(
            form_urlencoded_field(b"a=1&csrf=x%2By", "csrf").as_deref(),
            Some("x+y")
        );
        assert_eq!(form_urlencoded_field(b"a=1", "csrf"), None);
    }
}
