//! The Node page's layer actions: boot a layer next time, and roll back to the
//! layer before the default (`nodectl rollback`), by the page (with a
//! confirmation) and by the API, each checked against fresh facts first.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use layers::LayerName;

use crate::api::{blocking, ok, to_value};
use crate::error::ApiError;
use crate::node_layers::{boot_next_target, parse_layer, view};
use crate::pages::{self, PageCtx};
use crate::state::{Authed, Shared};
use crate::views;

/// Boots `layer` next time, for the session of `token` ([`crate::privileged`]).
async fn boot_next(state: &Shared, token: &str, layer: &LayerName) -> Result<(), ApiError> {
    let change = helper::Change::BootNext {
        layer: layer.to_string(),
    };
    let result = crate::privileged::make(state, token, change).await;
    state.layers.invalidate();
    result
}

/// `POST /node/layers/{layer}/boot-next`: asks for confirmation, then sets grub's
/// `next_entry`.
pub async fn boot_next_page(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/node");
    let (confirm, layer) = match pages::confirmed(&body).and_then(|c| Ok((c, parse_layer(&name)?)))
    {
        Ok(v) => v,
        Err(e) => return pages::error_page(page, &e, "/node"),
    };
    if !confirm {
        let l = layer.clone();
        let reader = state.reader.clone();
        let checked = blocking(move || {
            let facts = reader
                .layer_facts()
                .map_err(|e| ApiError::Failed(format!("reading the layer store: {e}")))?;
            boot_next_target(&facts, &l)?;
            Ok(facts.grubenv)
        })
        .await;
        let env = match checked {
            Ok(env) => env,
            Err(e) => return pages::error_page(page, &e, "/node"),
        };
        let default = env
            .iter()
            .find(|(k, v)| k == "saved_entry" && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .unwrap_or("none");
        let question = format!(
            "Boot layer “{name}” at the next boot? Nothing changes until the node \
             reboots; that one boot starts “{name}”, the boots after it the default \
             entry “{default}” again. Put the host into maintenance in the engine \
             before rebooting it."
        );
        return pages::confirm(
            page,
            question,
            format!("/node/layers/{}/boot-next", views::path_segment(&name)),
            "Boot this layer next time",
            "/node",
        );
    }
    match boot_next(&state, &authed.token, &layer).await {
        Ok(()) => Redirect::to("/node").into_response(),
        Err(e) => pages::error_page(page, &e, "/node"),
    }
}

/// `POST /api/v1/node/layers/{layer}/boot-next` (`X-CSRF-Token` required): the API
/// caller has confirmed by calling. Answers `NodeLayers`, the new state.
pub async fn boot_next_api(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let layer = parse_layer(&name)?;
    boot_next(&state, &authed.token, &layer).await?;
    let st = state.clone();
    let v = blocking(move || Ok(view(&st.layers.get(&st.reader)))).await?;
    Ok(ok("NodeLayers", to_value(&v)))
}

/// Rolls back, for the session of `token` ([`crate::privileged`]).
async fn rollback(state: &Shared, token: &str) -> Result<(), ApiError> {
    let result = crate::privileged::make(state, token, helper::Change::Rollback).await;
    state.layers.invalidate();
    result
}

/// `POST /node/rollback`: asks for confirmation (what becomes the default,
/// and a pending trial called off), then rolls back.
pub async fn rollback_page(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/node");
    let confirm = match pages::confirmed(&body) {
        Ok(c) => c,
        Err(e) => return pages::error_page(page, &e, "/node"),
    };
    if !confirm {
        let reader = state.reader.clone();
        let planned = blocking(move || {
            let facts = reader
                .layer_facts()
                .map_err(|e| ApiError::Failed(format!("reading the layer store: {e}")))?;
            update::plan_rollback(&facts, None, false)
                .map_err(|e| ApiError::Conflict(e.to_string()))
        })
        .await;
        let plan = match planned {
            Ok(p) => p,
            Err(e) => return pages::error_page(page, &e, "/node"),
        };
        let trial = plan
            .cancels_trial
            .as_ref()
            .map(|t| format!(" The pending trial boot of “{t}” is called off."))
            .unwrap_or_default();
        let question = format!(
            "Make “{}” the default layer instead of “{}”? Nothing changes until the node \
             reboots; every boot after that starts “{}”, and “{}” stays in the store.{trial} \
             Put the host into maintenance in the engine before rebooting it.",
            plan.to, plan.from, plan.to, plan.from
        );
        return pages::confirm(
            page,
            question,
            "/node/rollback".into(),
            "Roll back",
            "/node",
        );
    }
    match rollback(&state, &authed.token).await {
        Ok(()) => Redirect::to("/node").into_response(),
        Err(e) => pages::error_page(page, &e, "/node"),
    }
}

/// `POST /api/v1/node/rollback` (`X-CSRF-Token` required): answers
/// `NodeLayers`, the new state.
pub async fn rollback_api(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
) -> Result<Response, ApiError> {
    rollback(&state, &authed.token).await?;
    let st = state.clone();
    let v = blocking(move || Ok(view(&st.layers.get(&st.reader)))).await?;
    Ok(ok("NodeLayers", to_value(&v)))
}
