//! The router, the shared state and the layers every request passes through: security
//! headers, the session check, and the CSRF and Origin checks on state changes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::session::{COOKIE, Session, Sessions, Throttle, same_secret};
use crate::vms::Libvirt;
use crate::{api, assets, login, node_layers, pages, register, terminal};

/// Largest request body accepted (forms and JSON are small).
pub const BODY_LIMIT: usize = 64 * 1024;

/// The Content-Security-Policy of every page: our own scripts and styles only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub sessions: Mutex<Sessions>,
    pub throttle: Mutex<Throttle>,
    /// What session idle times and the login throttle's window are measured with.
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
    pub libvirt: Arc<Libvirt>,
    /// Whether the console is served over TLS (cookies and HSTS depend on it).
    pub tls: bool,
    /// Slow host facts shared by overview requests.
    pub facts: crate::views::FactsCache,
    /// The layered root's facts shared by Node page requests.
    pub layers: node_layers::LayersCache,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Shared {
        Self::with_clock(config, metrics, Arc::new(SystemClock))
    }

    /// [`AppState::new`] with sessions and the login throttle on `clock`.
    pub fn with_clock(config: Config, metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> Shared {
        let libvirt = Arc::new(Libvirt::new(&config.libvirt_uri));
        Arc::new(Self {
            tls: !config.insecure_http,
            config,
            sessions: Mutex::new(Sessions::with_clock(clock.clone())),
            throttle: Mutex::new(Throttle::default()),
            clock,
            metrics,
            libvirt,
            facts: crate::views::FactsCache::default(),
            layers: node_layers::LayersCache::default(),
        })
    }

    /// Number of live sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(0)
    }
}

/// The client's address, put into each request by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The logged-in session of a request, put there by [`require_session`].
#[derive(Debug, Clone)]
pub struct Authed {
    pub token: String,
    pub session: Session,
}

/// Builds the console's router.
pub fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/", get(pages::overview))
        .route("/vms", get(pages::vms))
        .route("/vms/{name}/{action}", post(pages::vm_action))
        .route("/services", get(pages::services))
        .route("/services/{unit}/{action}", post(pages::service_action))
        .route("/logs", get(pages::logs))
        .route("/storage", get(pages::storage))
        .route("/networking", get(pages::networking))
        .route("/node", get(pages::node))
        .route(
            "/node/layers/{layer}/boot-next",
            post(node_layers::boot_next_page),
        )
        .route("/registration", get(register::page))
        .route("/registration/fetch", post(register::fetch))
        .route("/registration/register", post(register::register))
        .route("/terminal", get(terminal::page))
        .route("/terminal/socket", get(terminal::socket))
        .route("/logout", post(login::logout))
        .route("/api/v1/session", get(api::session))
        .route("/api/v1/overview", get(api::overview))
        .route("/api/v1/metrics", get(api::metrics))
        .route("/api/v1/metrics/stream", get(api::metrics_stream))
        .route("/api/v1/vms", get(api::vms))
        .route("/api/v1/vms/{name}", get(api::vm))
        .route("/api/v1/vms/{name}/{action}", post(api::vm_action))
        .route("/api/v1/services", get(api::services))
        .route(
            "/api/v1/services/{unit}/{action}",
            post(api::service_action),
        )
        .route("/api/v1/logs", get(api::logs))
        .route("/api/v1/logs/stream", get(api::logs_stream))
        .route("/api/v1/storage", get(api::storage))
        .route("/api/v1/network", get(api::network))
        .route("/api/v1/node", get(api::node))
        .route(
            "/api/v1/node/layers/{layer}/boot-next",
            post(node_layers::boot_next_api),
        )
        .route("/api/v1/registration", get(register::api))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(login::page).post(login::submit))
        .route("/static/{file}", get(assets::serve))
        .merge(protected)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    ApiError::NotFound(format!("nothing at {}", req.uri().path())).into_response()
}

/// Adds the security headers to every response.
async fn security_headers(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let is_static = req.uri().path().starts_with("/static/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=(), usb=(), payment=()",
    );
    if !is_static {
        set(header::CACHE_CONTROL, "no-store");
    }
    if state.tls {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    resp
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
/// `Origin` on every cross-site POST, WebSocket and fetch; a foreign one is refused.
/// Under `Referrer-Policy: no-referrer` a browser sends `Origin: null` for its own form
/// posts, so `null` counts as no information: those requests still need the CSRF token.
pub fn origin_allowed(headers: &HeaderMap, tls: bool) -> bool {
    let Some(origin) = headers
        .get(header::ORIGIN)
        .filter(|o| o.as_bytes() != b"null")
    else {
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
/// the session's CSRF token and, when they have an `Origin`, come from this console.
async fn require_session(State(state): State<Shared>, req: Request, next: Next) -> Response {
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
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response())?;
    let found = form_urlencoded_field(&bytes, "csrf");
    if !found.is_some_and(|v| same_secret(&v, expected)) {
        return Err(refused());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
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
        assert!(origin_allowed(&null, true), "a form post under no-referrer");
        assert!(!origin_allowed(
            &headers(&[("origin", "https://node:9090")]),
            true
        ));
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
