//! The API that creates, changes and removes VMs, their snapshots, storage pools
//! and the state of virtual networks (`X-CSRF-Token` required on each change, made
//! through [`crate::privileged::make`] like every change of the console).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use helper::{Change, VmEdit, VmSpec};
use serde::Deserialize;
use serde_json::json;

use crate::api::{blocking, ok, to_value};
use crate::error::{ApiError, parse_json};
use crate::privileged::make;
use crate::state::{Authed, Shared};

/// The VM `name` as the API shows it, after a change.
async fn vm_value(state: &Shared, name: String) -> Result<serde_json::Value, ApiError> {
    let lv = state.libvirt.clone();
    let vm = blocking(move || lv.get(&name).map_err(ApiError::from)).await?;
    Ok(to_value(&vm))
}

/// `POST /api/v1/vms` with a [`VmSpec`]: 201 and the new VM.
pub async fn create(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: VmSpec = parse_json(&body)?;
    crate::vm_manage::check_spec(&spec).map_err(ApiError::from)?;
    let name = spec.name.clone();
    make(&state, &authed.token, Change::VmCreate { spec }).await?;
    let vm = vm_value(&state, name).await?;
    Ok((StatusCode::CREATED, ok("VirtualMachine", vm)).into_response())
}

/// `PATCH /api/v1/vms/{name}` with `{vcpus?, memory_mib?, autostart?}`.
pub async fn edit(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let edit: VmEdit = parse_json(&body)?;
    if edit == VmEdit::default() {
        return Err(ApiError::BadRequest(
            "nothing to change: give vcpus, memory_mib or autostart".into(),
        ));
    }
    let change = Change::VmEdit {
        name: name.clone(),
        edit,
    };
    make(&state, &authed.token, change).await?;
    Ok(ok("VirtualMachine", vm_value(&state, name).await?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    #[serde(default)]
    storage: bool,
}

/// `DELETE /api/v1/vms/{name}?storage=true`: the VM, and with `storage` its disks'
/// volumes.
pub async fn delete(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let change = Change::VmDelete {
        name: name.clone(),
        storage: q.storage,
    };
    make(&state, &authed.token, change).await?;
    Ok(ok(
        "Status",
        json!({ "deleted": name, "storage": q.storage }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSnapshot {
    name: String,
    #[serde(default)]
    description: Option<String>,
}

fn snapshot_change(vm: String, snapshot: String, action: &str, d: Option<String>) -> Change {
    Change::Snapshot {
        vm,
        snapshot,
        action: action.to_string(),
        description: d,
    }
}

/// `POST /api/v1/vms/{name}/snapshots` with `{name, description?}`: 201.
pub async fn snapshot_create(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(vm): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewSnapshot = parse_json(&body)?;
    let change = snapshot_change(vm.clone(), new.name.clone(), "create", new.description);
    make(&state, &authed.token, change).await?;
    Ok((
        StatusCode::CREATED,
        ok("Snapshot", json!({ "vm": vm, "name": new.name })),
    )
        .into_response())
}

/// `POST /api/v1/vms/{name}/snapshots/{snap}/revert`.
pub async fn snapshot_revert(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((vm, snap)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    make(
        &state,
        &authed.token,
        snapshot_change(vm.clone(), snap, "revert", None),
    )
    .await?;
    Ok(ok("VirtualMachine", vm_value(&state, vm).await?))
}

/// `DELETE /api/v1/vms/{name}/snapshots/{snap}`.
pub async fn snapshot_delete(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((vm, snap)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let change = snapshot_change(vm.clone(), snap.clone(), "delete", None);
    make(&state, &authed.token, change).await?;
    Ok(ok("Status", json!({ "vm": vm, "deleted": snap })))
}

/// `GET /api/v1/pools`: storage pools and virtual networks.
pub async fn resources(State(state): State<Shared>) -> Result<Response, ApiError> {
    let lv = state.libvirt.clone();
    let (pools, networks) =
        blocking(move || crate::vm_manage::resources(&lv).map_err(ApiError::from)).await?;
    Ok(ok(
        "VirtualizationResources",
        json!({ "pools": pools, "networks": networks }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    name: String,
    path: String,
}

/// `POST /api/v1/pools` with `{name, path}`: a directory pool, 201.
pub async fn pool_create(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let new: NewPool = parse_json(&body)?;
    let change = Change::PoolCreate {
        name: new.name.clone(),
        path: new.path.clone(),
    };
    make(&state, &authed.token, change).await?;
    Ok((
        StatusCode::CREATED,
        ok("StoragePool", json!({ "name": new.name, "path": new.path })),
    )
        .into_response())
}

/// `POST /api/v1/pools/{name}/{start|stop}`.
pub async fn pool_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let change = Change::Pool {
        name: name.clone(),
        action: action.clone(),
    };
    make(&state, &authed.token, change).await?;
    Ok(ok("Status", json!({ "pool": name, "done": action })))
}

/// `POST /api/v1/virtual-networks/{name}/{start|stop}`.
pub async fn network_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let change = Change::Network {
        name: name.clone(),
        action: action.clone(),
    };
    make(&state, &authed.token, change).await?;
    Ok(ok("Status", json!({ "network": name, "done": action })))
}
