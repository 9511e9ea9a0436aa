//! The console's routes, and the layers every request passes through: security
//! headers, the body limit, and the session, CSRF, Origin and administrative access
//! checks ([`crate::guard`]). The top of the module graph: nothing imports it but the
//! server.

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};

use crate::error::ApiError;
use crate::guard::{BODY_LIMIT, CSP, require_session};
use crate::state::Shared;
use crate::{
    access, api, assets, layer_actions, login, pages, register, terminal, update_actions,
    update_upload, vm_api, vm_console, vm_pages,
};

/// Builds the console's router.
pub fn router(state: Shared) -> Router {
    let protected = Router::new()
        .route("/", get(pages::overview))
        .route("/vms", get(pages::vms))
        .route("/vms/new", get(vm_pages::new_vm).post(vm_pages::create))
        .route("/vms/{name}", get(crate::vm_detail::page))
        .route("/vms/{name}/{action}", post(pages::vm_action))
        .route("/vms/{name}/edit", post(vm_pages::edit))
        .route("/vms/{name}/delete", post(vm_pages::delete))
        .route("/vms/{name}/snapshots", post(vm_pages::snapshot_create))
        .route(
            "/vms/{name}/snapshots/{snap}/{action}",
            post(vm_pages::snapshot_action),
        )
        .route("/pools", get(vm_pages::pools).post(vm_pages::pool_create))
        .route("/pools/{name}/{action}", post(vm_pages::pool_action))
        .route(
            "/virtual-networks/{name}/{action}",
            post(vm_pages::network_action),
        )
        .route("/vms/{name}/vnc", get(vm_console::vnc))
        .route("/vms/{name}/serial", get(vm_console::serial))
        .route("/services", get(pages::services))
        .route("/services/{unit}/{action}", post(pages::service_action))
        .route("/logs", get(pages::logs))
        .route("/selinux", get(crate::selinux::page))
        .route("/storage", get(pages::storage))
        .route("/networking", get(pages::networking))
        .route("/node", get(pages::node))
        .route(
            "/node/layers/{layer}/boot-next",
            post(layer_actions::boot_next_page),
        )
        .route("/node/rollback", post(layer_actions::rollback_page))
        .route(
            "/node/update",
            get(update_actions::page).post(update_actions::submit),
        )
        .route("/registration", get(register::page))
        .route("/registration/fetch", post(register::fetch))
        .route("/registration/register", post(register::register))
        .route("/terminal", get(terminal::page))
        .route("/terminal/socket", get(terminal::socket))
        .route("/logout", post(login::logout))
        .route("/session/admin", post(access::page_on))
        .route("/session/admin/off", post(access::page_off))
        .route("/api/v1/session", get(api::session))
        .route(
            "/api/v1/session/admin",
            post(access::api_on).delete(access::api_off),
        )
        .route("/api/v1/overview", get(api::overview))
        .route("/api/v1/metrics", get(api::metrics))
        .route("/api/v1/metrics/stream", get(api::metrics_stream))
        .route("/api/v1/vms", get(api::vms).post(vm_api::create))
        .route(
            "/api/v1/vms/{name}",
            get(api::vm).patch(vm_api::edit).delete(vm_api::delete),
        )
        .route("/api/v1/vms/{name}/{action}", post(api::vm_action))
        .route(
            "/api/v1/vms/{name}/snapshots",
            post(vm_api::snapshot_create),
        )
        .route(
            "/api/v1/vms/{name}/snapshots/{snap}",
            delete(vm_api::snapshot_delete),
        )
        .route(
            "/api/v1/vms/{name}/snapshots/{snap}/revert",
            post(vm_api::snapshot_revert),
        )
        .route(
            "/api/v1/pools",
            get(vm_api::resources).post(vm_api::pool_create),
        )
        .route("/api/v1/pools/{name}/{action}", post(vm_api::pool_action))
        .route(
            "/api/v1/virtual-networks/{name}/{action}",
            post(vm_api::network_action),
        )
        .route("/api/v1/services", get(api::services))
        .route(
            "/api/v1/services/{unit}/{action}",
            post(api::service_action),
        )
        .route("/api/v1/logs", get(api::logs))
        .route("/api/v1/selinux/denials", get(crate::selinux::api))
        .route("/api/v1/logs/stream", get(api::logs_stream))
        .route("/api/v1/storage", get(api::storage))
        .route("/api/v1/network", get(api::network))
        .route("/api/v1/node", get(api::node))
        .route(
            "/api/v1/node/layers/{layer}/boot-next",
            post(layer_actions::boot_next_api),
        )
        .route("/api/v1/node/rollback", post(layer_actions::rollback_api))
        .route(
            "/api/v1/node/update",
            get(update_actions::api_job).post(update_actions::api_submit),
        )
        // Its body is streamed to disk, within its own limits.
        .route(
            "/api/v1/node/update/upload/{file}",
            put(update_upload::api_put),
        )
        .route("/api/v1/registration", get(register::api))
        .route("/api/v1/diagnostics", post(crate::diagnostics::download))
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
    // Not `no-referrer`: under it browsers send `Origin: null` with the console's own
    // form posts, and `null` is refused (see `guard::origin_allowed`).
    set(header::REFERRER_POLICY, "same-origin");
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
