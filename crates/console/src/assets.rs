//! Static files compiled into the binary: our stylesheets and scripts, and xterm.js
//! and noVNC from the npm registry (copied in by `build.rs`).

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Every file served under `/static/`: name, content type, bytes.
pub const FILES: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/console.js"),
    ),
    (
        "terminal.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/terminal.js"),
    ),
    (
        "vm_console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/vm_console.js"),
    ),
    (
        "vm_console.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/vm_console.css"),
    ),
    (
        "novnc.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/novnc.js")),
    ),
    (
        "xterm.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/xterm.js")),
    ),
    (
        "xterm.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/xterm.css")),
    ),
];

/// Whether the real xterm.js was bundled (false when `build.rs` found no npm install).
pub const XTERM_BUNDLED: bool = option_env!("HVNODE_XTERM_BUNDLED").is_some();

/// Whether noVNC's RFB class was bundled (false when `build.rs` found no
/// `web/dist/novnc.js`).
pub const NOVNC_BUNDLED: bool = option_env!("HVNODE_NOVNC_BUNDLED").is_some();

/// `GET /static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some((_, ctype, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::NotFound(format!("no static file {file:?}")).into_response();
    };
    let mut resp = (*bytes).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    resp
}
