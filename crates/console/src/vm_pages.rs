//! The forms that create, change and delete VMs and their snapshots, make
//! directory pools and start and stop pools and virtual networks: the HTML side of
//! [`crate::vm_api`]. Each change goes through [`crate::privileged::make`] with the
//! same [`Change`] the API sends, so a page and the API behave the same; a
//! destructive one asks first on a confirmation page, a delete by the VM's name.
//! Every form works without JavaScript and ends in a 303 to the page it came from,
//! or in a page that says what failed and what to do.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use helper::{Change, VmEdit, VmSpec};
use serde::Deserialize;

use crate::error::{ApiError, parse_form};
use crate::metrics::human_bytes;
use crate::pages::{PageCtx, confirmed, render};
use crate::privileged::make;
use crate::state::{Authed, Shared};
use crate::views::path_segment;
use crate::vm_manage::{NetworkView, PoolView};

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: PageCtx,
    message: String,
    back: String,
}

/// What failed, inside the console's frame, with a way back to `back`.
fn failed(page: PageCtx, err: &ApiError, back: String) -> Response {
    let t = ErrorPage {
        page,
        message: err.to_string(),
        back,
    };
    (err.status(), render(&t)).into_response()
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    page: PageCtx,
    question: String,
    action: String,
    button: &'static str,
    back: String,
}

/// The page of one VM.
fn vm_url(name: &str) -> String {
    format!("/vms/{}", path_segment(name))
}

/// Runs `f` off the async runtime; a panic in it is a failure, not a crash.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Failed(format!("reading libvirt failed: {e}")))?
}

/// The storage pools and virtual networks, from the read-only connection.
async fn resources(state: &Shared) -> Result<(Vec<PoolView>, Vec<NetworkView>), ApiError> {
    let lv = state.libvirt.clone();
    blocking(move || crate::vm_manage::resources(&lv).map_err(ApiError::from)).await
}

/// What the "New virtual machine" form sends: text as typed, so that a bad field
/// comes back as it was.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewVmForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub vcpus: String,
    #[serde(default)]
    pub memory_mib: String,
    #[serde(default)]
    pub disk_gib: String,
    #[serde(default)]
    pub pool: String,
    /// A virtual network, or empty for the host bridge in `bridge`.
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub bridge: String,
    #[serde(default)]
    pub firmware: String,
    #[serde(default)]
    pub iso: String,
    #[serde(default)]
    pub start: Option<String>,
}

/// A form field that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The form's name of the field (`memory_mib`), empty when no one field is wrong.
    pub field: &'static str,
    pub message: String,
}

/// The fields of the form: name and the label the page shows.
const FIELDS: &[(&str, &str)] = &[
    ("name", "Name"),
    ("vcpus", "vCPUs"),
    ("memory_mib", "Memory (MiB)"),
    ("disk_gib", "Disk size (GiB)"),
    ("pool", "Storage pool"),
    ("network", "Network"),
    ("bridge", "Host bridge"),
    ("firmware", "Firmware"),
    ("iso", "Installation medium"),
];

fn label(field: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, l)| *l)
        .unwrap_or("")
}

fn field_error(field: &'static str, message: impl std::fmt::Display) -> FieldError {
    FieldError {
        field,
        message: format!("{}: {message}", label(field)),
    }
}

/// The field a refusal of the checks or of libvirt is about, from its words
/// ([`crate::vm_manage::check_spec`] and `create` name the field first).
pub fn field_of(message: &str) -> &'static str {
    const STARTS: &[(&str, &str)] = &[
        ("VM name", "name"),
        ("a VM named", "name"),
        ("storage pool", "pool"),
        ("no storage pool", "pool"),
        ("vcpus", "vcpus"),
        ("memory_mib", "memory_mib"),
        ("disk_gib", "disk_gib"),
        ("network", "network"),
        ("no virtual network", "network"),
        ("iso", "iso"),
        ("firmware", "firmware"),
    ];
    STARTS
        .iter()
        .find(|(start, _)| message.starts_with(start))
        .map(|(_, f)| *f)
        .unwrap_or("")
}

fn number<T: std::str::FromStr>(field: &'static str, text: &str) -> Result<T, FieldError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(field_error(field, "give a number"));
    }
    t.parse()
        .map_err(|_| field_error(field, format!("{t:?} is not a whole number")))
}

impl NewVmForm {
    /// The form's defaults: a small VM on the first running pool and network.
    fn defaults(pools: &[PoolView], networks: &[NetworkView]) -> Self {
        Self {
            vcpus: "2".into(),
            memory_mib: "2048".into(),
            disk_gib: "20".into(),
            pool: pools
                .iter()
                .find(|p| p.active)
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            network: networks
                .iter()
                .find(|n| n.active)
                .or(networks.first())
                .map(|n| n.name.clone())
                .unwrap_or_default(),
            firmware: "uefi".into(),
            ..Self::default()
        }
    }

    /// The API's request from the form, each field checked as the API checks it;
    /// a refusal names the field.
    pub fn spec(&self) -> Result<VmSpec, FieldError> {
        let network = match (self.network.trim(), self.bridge.trim()) {
            ("", "") => {
                return Err(field_error(
                    "network",
                    "choose a virtual network, or name a host bridge",
                ));
            }
            ("", bridge) => bridge.to_string(),
            (net, "") => net.to_string(),
            (_, _) => {
                return Err(field_error(
                    "bridge",
                    "choose \"Host bridge\" as the network to use a bridge, or leave this empty",
                ));
            }
        };
        let iso = self.iso.trim();
        let spec = VmSpec {
            name: self.name.trim().to_string(),
            vcpus: number("vcpus", &self.vcpus)?,
            memory_mib: number("memory_mib", &self.memory_mib)?,
            disk_gib: number("disk_gib", &self.disk_gib)?,
            pool: self.pool.trim().to_string(),
            network,
            firmware: self.firmware.trim().to_string(),
            iso: (!iso.is_empty()).then(|| iso.to_string()),
            start: self.start.is_some(),
        };
        crate::vm_manage::check_spec(&spec).map_err(|f| {
            let field = field_of(&f.message);
            let field = if field == "network" && self.network.trim().is_empty() {
                "bridge"
            } else {
                field
            };
            FieldError {
                message: if field.is_empty() {
                    f.message
                } else {
                    format!("{}: {}", label(field), f.message)
                },
                field,
            }
        })?;
        Ok(spec)
    }
}

#[derive(Template)]
#[template(path = "vm_new.html")]
struct NewVmPage {
    page: PageCtx,
    f: NewVmForm,
    /// The refused field's name, empty when none is.
    field: &'static str,
    error: Option<String>,
    pools: Vec<PoolView>,
    networks: Vec<NetworkView>,
    resources_error: Option<String>,
}

impl NewVmPage {
    fn bad(&self, field: &str) -> bool {
        !self.field.is_empty() && self.field == field
    }

    /// Whether the chosen pool is one of the running pools the select offers.
    fn has_pool(&self) -> bool {
        self.pools.iter().any(|p| p.name == self.f.pool)
    }
}

fn new_vm_ctx(authed: &Authed) -> PageCtx {
    let mut page = PageCtx::new(authed, "/vms");
    page.title = "New virtual machine";
    page
}

async fn new_vm_page(
    state: &Shared,
    page: PageCtx,
    f: Option<NewVmForm>,
    error: Option<FieldError>,
    status: StatusCode,
) -> Response {
    let (pools, networks, resources_error) = match resources(state).await {
        Ok((p, n)) => (p, n, None),
        Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
    };
    let f = f.unwrap_or_else(|| NewVmForm::defaults(&pools, &networks));
    let (field, error) = match error {
        Some(e) => (e.field, Some(e.message)),
        None => ("", None),
    };
    let t = NewVmPage {
        page,
        f,
        field,
        error,
        pools: pools.into_iter().filter(|p| p.active).collect(),
        networks,
        resources_error,
    };
    (status, render(&t)).into_response()
}

/// `GET /vms/new`: the form.
pub async fn new_vm(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    new_vm_page(&state, new_vm_ctx(&authed), None, None, StatusCode::OK).await
}

/// `POST /vms/new`: creates the VM and opens its page; a bad field shows the form
/// again, filled in as sent, with the field named.
pub async fn create(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let page = new_vm_ctx(&authed);
    let f: NewVmForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return failed(page, &e, "/vms/new".into()),
    };
    let spec = match f.spec() {
        Ok(s) => s,
        Err(e) => {
            return new_vm_page(&state, page, Some(f), Some(e), StatusCode::BAD_REQUEST).await;
        }
    };
    let name = spec.name.clone();
    match make(&state, &authed.token, Change::VmCreate { spec }).await {
        Ok(()) => Redirect::to(&vm_url(&name)).into_response(),
        Err(e) => {
            let message = e.to_string();
            let error = FieldError {
                field: field_of(&message),
                message,
            };
            new_vm_page(&state, page, Some(f), Some(error), e.status()).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct EditForm {
    #[serde(default)]
    vcpus: String,
    #[serde(default)]
    memory_mib: String,
    #[serde(default)]
    autostart: Option<String>,
}

/// `POST /vms/{name}/edit`: vCPUs, memory and autostart, those that differ from
/// the VM's now.
pub async fn edit(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/vms");
    let back = vm_url(&name);
    let parsed = parse_form::<EditForm>(&body).and_then(|f| {
        let field = |e: FieldError| ApiError::BadRequest(e.message);
        Ok((
            number::<u32>("vcpus", &f.vcpus).map_err(field)?,
            number::<u64>("memory_mib", &f.memory_mib).map_err(field)?,
            f.autostart.is_some(),
        ))
    });
    let (vcpus, memory_mib, autostart) = match parsed {
        Ok(p) => p,
        Err(e) => return failed(page, &e, back),
    };
    let lv = state.libvirt.clone();
    let n = name.clone();
    let vm = match blocking(move || lv.get(&n).map_err(ApiError::from)).await {
        Ok(vm) => vm,
        Err(e) => return failed(page, &e, "/vms".into()),
    };
    let edit = VmEdit {
        vcpus: (vcpus != vm.vcpus).then_some(vcpus),
        memory_mib: (memory_mib * 1024 != vm.memory_kib).then_some(memory_mib),
        autostart: (autostart != vm.autostart).then_some(autostart),
    };
    if edit != VmEdit::default() {
        let change = Change::VmEdit {
            name: name.clone(),
            edit,
        };
        if let Err(e) = make(&state, &authed.token, change).await {
            return failed(page, &e, back);
        }
    }
    Redirect::to(&back).into_response()
}

#[derive(Debug, Deserialize)]
struct SnapshotForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

fn snapshot_change(vm: &str, snapshot: &str, action: &str, description: Option<String>) -> Change {
    Change::Snapshot {
        vm: vm.to_string(),
        snapshot: snapshot.to_string(),
        action: action.to_string(),
        description,
    }
}

/// `POST /vms/{name}/snapshots`: takes a snapshot.
pub async fn snapshot_create(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(vm): Path<String>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/vms");
    let back = vm_url(&vm);
    let f: SnapshotForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return failed(page, &e, back),
    };
    let description = Some(f.description.trim().to_string()).filter(|d| !d.is_empty());
    let change = snapshot_change(&vm, f.name.trim(), "create", description);
    match make(&state, &authed.token, change).await {
        Ok(()) => Redirect::to(&format!("{back}#snapshots")).into_response(),
        Err(e) => failed(page, &e, back),
    }
}

/// `POST /vms/{name}/snapshots/{snap}/{revert|delete}`: after a confirmation page.
pub async fn snapshot_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((vm, snap, action)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/vms");
    let back = vm_url(&vm);
    let (question, button) = match action.as_str() {
        "revert" => (
            format!(
                "Revert virtual machine “{vm}” to snapshot “{snap}”? Its current state is \
                 lost: its disks (and its memory, if the snapshot has it) go back to what \
                 they were when the snapshot was taken."
            ),
            "Revert",
        ),
        "delete" => (
            format!(
                "Delete snapshot “{snap}” of virtual machine “{vm}”? The VM stays as it is; \
                 it can no longer go back to this snapshot."
            ),
            "Delete snapshot",
        ),
        _ => {
            let e = ApiError::NotFound(format!(
                "unknown snapshot action {action:?} (revert, delete)"
            ));
            return failed(page, &e, back);
        }
    };
    match confirmed(&body) {
        Ok(true) => {}
        Ok(false) => {
            let t = ConfirmPage {
                page,
                question,
                action: format!("{back}/snapshots/{}/{action}", path_segment(&snap)),
                button,
                back,
            };
            return render(&t).into_response();
        }
        Err(e) => return failed(page, &e, back),
    }
    match make(
        &state,
        &authed.token,
        snapshot_change(&vm, &snap, &action, None),
    )
    .await
    {
        Ok(()) => Redirect::to(&format!("{back}#snapshots")).into_response(),
        Err(e) => failed(page, &e, back),
    }
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    /// The VM's name as typed; none the first time (the page asks for it).
    #[serde(default)]
    confirm_name: Option<String>,
    #[serde(default)]
    storage: Option<String>,
}

#[derive(Template)]
#[template(path = "vm_delete.html")]
struct DeletePage {
    page: PageCtx,
    name: String,
    storage: bool,
    error: Option<String>,
}

/// `POST /vms/{name}/delete`: deletes the VM once its name is typed, with its disks'
/// volumes when `storage` is checked.
pub async fn delete(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let page = PageCtx::new(&authed, "/vms");
    let f: DeleteForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return failed(page, &e, vm_url(&name)),
    };
    let storage = f.storage.is_some();
    let typed = f.confirm_name.as_deref().map(str::trim);
    if typed != Some(name.as_str()) {
        let (status, error) = match typed {
            None => (StatusCode::OK, None),
            Some(t) => (
                StatusCode::BAD_REQUEST,
                Some(format!(
                    "“{t}” is not the name of this VM, so nothing was deleted: type “{name}” \
                     exactly to delete it"
                )),
            ),
        };
        let t = DeletePage {
            page,
            name,
            storage,
            error,
        };
        return (status, render(&t)).into_response();
    }
    let change = Change::VmDelete {
        name: name.clone(),
        storage,
    };
    match make(&state, &authed.token, change).await {
        Ok(()) => Redirect::to("/vms").into_response(),
        Err(e) => failed(page, &e, vm_url(&name)),
    }
}

#[derive(Template)]
#[template(path = "pools.html")]
struct PoolsPage {
    page: PageCtx,
    pools: Vec<PoolView>,
    networks: Vec<NetworkView>,
    error: Option<String>,
}

impl PoolsPage {
    /// A pool's size, or a dash when libvirt knows none (an inactive pool).
    fn size(&self, p: &PoolView, bytes: &u64) -> String {
        if p.active || *bytes > 0 {
            human_bytes(*bytes as f64)
        } else {
            "–".into()
        }
    }
}

fn pools_ctx(authed: &Authed) -> PageCtx {
    let mut page = PageCtx::new(authed, "/pools");
    page.title = "Storage pools and networks";
    page
}

/// `GET /pools`: the storage pools and virtual networks.
pub async fn pools(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    let (pools, networks, error) = match resources(&state).await {
        Ok((p, n)) => (p, n, None),
        Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
    };
    let t = PoolsPage {
        page: pools_ctx(&authed),
        pools,
        networks,
        error,
    };
    render(&t).into_response()
}

#[derive(Debug, Deserialize)]
struct NewPoolForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    path: String,
}

/// `POST /pools`: a new directory pool, built, started and set to autostart.
pub async fn pool_create(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let page = pools_ctx(&authed);
    let f: NewPoolForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return failed(page, &e, "/pools".into()),
    };
    let change = Change::PoolCreate {
        name: f.name.trim().to_string(),
        path: f.path.trim().to_string(),
    };
    match make(&state, &authed.token, change).await {
        Ok(()) => Redirect::to("/pools").into_response(),
        Err(e) => failed(page, &e, "/pools".into()),
    }
}

/// What is started or stopped from the pools page.
#[derive(Debug, Clone, Copy)]
enum Resource {
    Pool,
    Network,
}

async fn resource_action(
    state: &Shared,
    authed: &Authed,
    what: Resource,
    name: String,
    action: String,
    body: &[u8],
) -> Response {
    let page = pools_ctx(authed);
    let back = "/pools".to_string();
    if action != "start" && action != "stop" {
        let e = ApiError::NotFound(format!("unknown action {action:?} (start, stop)"));
        return failed(page, &e, back);
    }
    let confirm = match confirmed(body) {
        Ok(c) => c,
        Err(e) => return failed(page, &e, back),
    };
    if action == "stop" && !confirm {
        let (question, path) = match what {
            Resource::Pool => (
                format!(
                    "Stop storage pool “{name}”? Its volumes cannot be used until it starts \
                     again: virtual machines whose disks are in it cannot start, and new \
                     disks cannot be made in it. Running VMs keep the files they have open."
                ),
                "pools",
            ),
            Resource::Network => (
                format!(
                    "Stop virtual network “{name}”? Running virtual machines plugged into it \
                     lose their network (its bridge, DHCP and NAT go away), and VMs that use \
                     it cannot start until it starts again."
                ),
                "virtual-networks",
            ),
        };
        let t = ConfirmPage {
            page,
            question,
            action: format!("/{path}/{}/stop", path_segment(&name)),
            button: "Stop",
            back,
        };
        return render(&t).into_response();
    }
    let change = match what {
        Resource::Pool => Change::Pool { name, action },
        Resource::Network => Change::Network { name, action },
    };
    match make(state, &authed.token, change).await {
        Ok(()) => Redirect::to("/pools").into_response(),
        Err(e) => failed(page, &e, back),
    }
}

/// `POST /pools/{name}/{start|stop}`: a stop after a confirmation page.
pub async fn pool_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    resource_action(&state, &authed, Resource::Pool, name, action, &body).await
}

/// `POST /virtual-networks/{name}/{start|stop}`: a stop after a confirmation page.
pub async fn network_action(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path((name, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    resource_action(&state, &authed, Resource::Network, name, action, &body).await
}

#[cfg(test)]
mod tests;
