//! The Node page's update: a bundle's URL or path checked (the plan shown
//! on a confirmation page), then applied as the node's update job, followed
//! on the update page; and the same by the API. The work is
//! [`crate::node_update`]'s.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::api::{blocking, ok, to_value};
use crate::error::{ApiError, parse_form, parse_json};
use crate::node_update::{self, Job, NODECTL, Run};
use crate::pages::{self, PageCtx, render};
use crate::state::{Authed, Shared};

#[derive(Template)]
#[template(path = "update_confirm.html")]
struct UpdateConfirmPage {
    page: PageCtx,
    source: String,
    run: Run,
}

#[derive(Template)]
#[template(path = "update.html")]
struct UpdatePage {
    page: PageCtx,
    job: Option<Job>,
    /// An update runs: no form to start another.
    running: bool,
}

#[derive(Deserialize)]
struct UpdateForm {
    source: String,
    #[serde(default)]
    confirm: Option<String>,
}

#[derive(Deserialize)]
struct UpdateRequest {
    source: String,
    #[serde(default)]
    confirm: bool,
}

/// `POST /node/update`: checks the bundle and shows the plan; with
/// `confirm=yes`, starts applying it and goes to the update page.
pub async fn submit(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/node");
    let form: UpdateForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return pages::error_page(page, &e, "/node"),
    };
    let held = state.helper_of(&authed.token);
    if form.confirm.as_deref() == Some("yes") {
        return match state.updates.start(held, NODECTL.into(), &form.source) {
            Ok(()) => Redirect::to("/node/update").into_response(),
            Err(e) => pages::error_page(page, &e, "/node"),
        };
    }
    let source = form.source.clone();
    match blocking(move || node_update::check(held.as_deref(), NODECTL.as_ref(), &source)).await {
        Ok(run) => render(&UpdateConfirmPage {
            page,
            source: form.source.trim().to_string(),
            run,
        })
        .into_response(),
        Err(e) => pages::error_page(page, &e, "/node"),
    }
}

/// `GET /node/update`: the current or last update job.
pub async fn page(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    let job = state.updates.get();
    render(&UpdatePage {
        page: PageCtx::new(&authed, "/node"),
        running: job.as_ref().is_some_and(|j| j.running),
        job,
    })
    .into_response()
}

/// `POST /api/v1/node/update` (`X-CSRF-Token` required), JSON
/// `{"source": …, "confirm": false}`: the check, answered as `UpdatePlan`;
/// with `"confirm": true` the job is started: 202 and `UpdateJob`.
pub async fn api_submit(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: UpdateRequest = parse_json(&body)?;
    let held = state.helper_of(&authed.token);
    if req.confirm {
        state.updates.start(held, NODECTL.into(), &req.source)?;
        let mut r = ok("UpdateJob", to_value(&state.updates.get()));
        *r.status_mut() = StatusCode::ACCEPTED;
        return Ok(r);
    }
    let source = req.source;
    let run =
        blocking(move || node_update::check(held.as_deref(), NODECTL.as_ref(), &source)).await?;
    Ok(ok("UpdatePlan", to_value(&run)))
}

/// `GET /api/v1/node/update`: the current or last job (`null` when none ran).
pub async fn api_job(State(state): State<Shared>) -> Response {
    ok("UpdateJob", to_value(&state.updates.get()))
}
