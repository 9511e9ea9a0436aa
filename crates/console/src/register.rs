//! The Registration page: the node's registration with an oVirt / RHV engine as
//! `nodectl register --status` shows it (the same persisted state), and a two-step
//! form to register, trusting the engine's CA on first use as `nodectl register` does:
//!
//! 1. `POST /registration/fetch`: fetch the engine's CA without trusting it and show
//!    its fingerprints (the node is then `awaiting-confirmation`);
//! 2. `POST /registration/register`: the administrator confirms the fingerprint shown;
//!    the CA is fetched again and must still have it, then the node registers.
//!
//! Beside the state, the page shows what the engine's link (`hvnode-vdsm`) says of the
//! engine, from its status file: whether the engine is connected, when it last asked,
//! the cluster levels offered (the `managed:` line of `nodectl register --status`).
//!
//! Both are `nodectl register` steps, which the privileged helper runs for an
//! administrator's session ([`crate::register_run`]): the web process writes none of
//! the files a registration writes. The engine is never asked from the browser.
//! Failures are shown on the page in the words `nodectl` uses, with what to do next.

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hostinfo::units::UtcTime;
use registration::{
    CaFingerprints, EngineAddr, ErrorKind, ErrorReport, Fingerprint, RegisterOptions, Registration,
    RegistrationState, StateFile, Sysroot,
};
use serde::Deserialize;
use vdsm::status::{Managed, Report as LinkReport, STATUS_PATH, Status as LinkStatus};

use crate::error::parse_form;
use crate::pages::{PageCtx, render};
use crate::register_run::StepError;
use crate::state::{Authed, Shared};

pub use crate::register_run::ENGINE_TIMEOUT;

/// Where to compare the fingerprint on the engine.
const ENGINE_FINGERPRINT_COMMAND: &str =
    "openssl x509 -in /etc/pki/ovirt-engine/ca.pem -noout -fingerprint -sha256";

/// One line of the state card.
#[derive(Debug, Clone)]
pub struct Row {
    /// `id` of the value's element, for scripts and tests.
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
    pub mono: bool,
}

/// The persisted state, shaped for the page.
#[derive(Debug, Clone)]
pub struct StateView {
    /// The state's name as stored (`registered`, `failed`, …).
    pub name: &'static str,
    /// What it means, in a few words.
    pub headline: String,
    /// What to do next, if anything.
    pub next: Option<String>,
    pub rows: Vec<Row>,
    /// A CA fetched earlier (by zero-touch or an unfinished confirmation) that waits
    /// for an administrator: it can be confirmed from the page.
    pub awaiting: Option<ConfirmView>,
    /// Whether the state is a failure (shown as a warning).
    pub failed: bool,
}

/// The engine's link as the page shows it.
#[derive(Debug, Clone)]
pub struct LinkView {
    /// [`Managed::name`] (`connected`, `not-serving`, …).
    pub state: &'static str,
    /// The `managed: …` line.
    pub summary: String,
    pub rows: Vec<Row>,
    /// Whether the link cannot serve the engine (shown as a warning).
    pub warn: bool,
}

/// The engine's link as `managed` classifies it, with the rows of its status file
/// (`None`: there is none, or it could not be read).
pub fn link_view(managed: &Managed, status: Option<&LinkStatus>) -> LinkView {
    let warn = matches!(
        managed,
        Managed::NotRunning | Managed::Unknown { .. } | Managed::NotServing { .. }
    );
    let mut rows = Vec::new();
    if let Some(s) = status {
        let peers = if s.peers.is_empty() {
            String::new()
        } else {
            format!(" ({})", s.peers.join(", "))
        };
        rows.push(row(
            "reg-vdsm-connections",
            "Engine connections",
            format!("{}{peers}", s.connections),
            false,
        ));
        let method = s
            .last_method
            .as_ref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        rows.push(row(
            "reg-vdsm-last-request",
            "Last request",
            s.last_request.map_or_else(
                || "none since the service started".to_string(),
                |t| format!("{}{method}", utc(t)),
            ),
            false,
        ));
        rows.push(row(
            "reg-vdsm-requests",
            "Requests",
            format!(
                "{} since the service started ({})",
                s.requests,
                utc(s.started)
            ),
            false,
        ));
        rows.push(row(
            "reg-vdsm-levels",
            "Cluster levels offered",
            if s.cluster_levels.is_empty() {
                "none yet".to_string()
            } else {
                s.cluster_levels.join(", ")
            },
            true,
        ));
        if let Some(level) = &s.engine_cluster_level {
            rows.push(row(
                "reg-vdsm-engine-level",
                "Cluster level in use",
                level.clone(),
                true,
            ));
        }
    }
    LinkView {
        state: managed.name(),
        summary: managed.to_string(),
        rows,
        warn,
    }
}

/// The fingerprints shown for confirmation and what the confirm form posts.
#[derive(Debug, Clone)]
pub struct ConfirmView {
    pub engine: String,
    pub host: String,
    pub port: u16,
    pub sha256: String,
    pub sha256_base64: String,
    pub sha1: String,
    /// The CA confirmed at the last registration with this engine, when it differs.
    pub previous: Option<String>,
    /// Whether the fingerprint typed in the form matched (`None`: none was typed).
    pub typed_matches: Option<bool>,
    /// The node's present registration, which a new one replaces.
    pub replaces: Option<String>,
    pub node_name: String,
    pub node_address: String,
}

/// An error shown on the page.
#[derive(Debug, Clone)]
pub struct ErrorView {
    pub message: String,
    pub next: Option<&'static str>,
}

/// The values of the register form, kept when the page is shown again.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    /// Engine FQDN (or `FQDN:PORT`, `[IPv6]:PORT`).
    pub engine: String,
    /// HTTPS port; 443 when empty.
    pub port: String,
    /// Name the engine shows for the node.
    pub node_name: String,
    /// Address the engine reaches the node at (optional).
    pub node_address: String,
    /// The engine CA's fingerprint: optional in the first step, the one shown in the
    /// second.
    pub fingerprint: String,
}

#[derive(Template)]
#[template(path = "registration.html")]
struct RegistrationPage {
    page: PageCtx,
    state: Option<StateView>,
    state_error: Option<String>,
    link: LinkView,
    form: RegisterForm,
    confirm: Option<ConfirmView>,
    error: Option<ErrorView>,
    notice: Option<String>,
    engine_command: &'static str,
}

impl RegistrationPage {
    /// Whether the node is registered (or managed) now.
    fn registered(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| matches!(s.name, "registered" | "managed"))
    }

    /// The fingerprints to confirm: those just fetched, or those of a CA that waits in
    /// the persisted state.
    fn confirm_card(&self) -> Option<&ConfirmView> {
        self.confirm
            .as_ref()
            .or_else(|| self.state.as_ref()?.awaiting.as_ref())
    }
}

fn sysroot(state: &Shared) -> Sysroot {
    Sysroot::new(&state.config.sysroot)
}

fn utc(secs: u64) -> String {
    format!("{} UTC", UtcTime::from_unix(secs))
}

fn row(id: &'static str, label: &'static str, value: impl Into<String>, mono: bool) -> Row {
    Row {
        id,
        label,
        value: value.into(),
        mono,
    }
}

/// The persisted state as the page shows it.
pub fn state_view(file: &StateFile) -> StateView {
    let status = &file.status;
    let mut rows = Vec::new();
    if let Some(engine) = status.engine() {
        rows.push(row("reg-engine", "Engine", engine.to_string(), true));
    }
    if let Some(ca) = status.confirmed_ca() {
        rows.push(row(
            "reg-ca",
            "Engine CA (SHA-256)",
            ca.sha256.clone(),
            true,
        ));
    }
    let summary = match status {
        RegistrationState::Unregistered => Summary {
            headline: "Not registered with an engine".to_string(),
            next: Some("Register below with the engine's address.".to_string()),
            awaiting: None,
        },
        RegistrationState::TrustFetched { engine, ca, .. }
        | RegistrationState::AwaitingConfirmation { engine, ca, .. } => {
            awaiting_summary(status, engine, ca)
        }
        RegistrationState::Registered(r)
        | RegistrationState::Managed {
            registration: r, ..
        } => registered_summary(status, r, &mut rows),
        RegistrationState::Failed {
            engine,
            attempts,
            last_error,
            failed_at,
            next_retry_at,
            ..
        } => {
            rows.push(row("reg-attempts", "Attempts", attempts.to_string(), false));
            rows.push(row(
                "reg-last-attempt",
                "Last attempt",
                utc(*failed_at),
                false,
            ));
            rows.push(row("reg-error", "Error", last_error.clone(), false));
            rows.push(row(
                "reg-next-retry",
                "Next automatic retry",
                format!(
                    "{} (if the boot-time registration runs)",
                    utc(*next_retry_at)
                ),
                false,
            ));
            Summary {
                headline: format!("Registration with engine {engine} failed"),
                next: Some("Correct what the error names, then register again below.".to_string()),
                awaiting: None,
            }
        }
    };
    if file.updated_at > 0 {
        rows.push(row(
            "reg-updated",
            "State changed",
            utc(file.updated_at),
            false,
        ));
    }
    StateView {
        name: status.name(),
        headline: summary.headline,
        next: summary.next,
        rows,
        awaiting: summary.awaiting,
        failed: matches!(status, RegistrationState::Failed { .. }),
    }
}

/// What the state card says above its rows: [`StateView`]'s `headline`, `next`
/// and `awaiting`.
struct Summary {
    headline: String,
    next: Option<String>,
    awaiting: Option<ConfirmView>,
}

/// A fetched CA that waits for an administrator's confirmation.
fn awaiting_summary(
    status: &RegistrationState,
    engine: &EngineAddr,
    ca: &CaFingerprints,
) -> Summary {
    let previous = match status {
        RegistrationState::AwaitingConfirmation { previous_ca, .. } => {
            previous_ca.as_ref().map(|p| p.sha256.clone())
        }
        _ => None,
    };
    Summary {
        headline: format!("The CA of engine {engine} waits for an administrator's confirmation"),
        next: Some(
            "Compare the fingerprint with the engine's own, then confirm it to register."
                .to_string(),
        ),
        awaiting: Some(confirm_view(engine, ca, previous, None, None, "", "")),
    }
}

/// A registered (or managed) node: its registration's rows, and whether the
/// engine still has to approve it.
fn registered_summary(
    status: &RegistrationState,
    r: &Registration,
    rows: &mut Vec<Row>,
) -> Summary {
    let name = r
        .name
        .clone()
        .or_else(|| r.address.clone())
        .unwrap_or_else(|| "the node's address (the engine's choice)".into());
    rows.push(row("reg-name", "Name in the engine", name, false));
    if let Some(a) = &r.address {
        rows.push(row("reg-address", "Address", a.clone(), true));
    }
    rows.push(row("reg-unique-id", "Unique id", r.unique_id.clone(), true));
    rows.push(row(
        "reg-ssh",
        "SSH",
        format!("{} on port {}", r.ssh_user, r.ssh_port),
        true,
    ));
    if let Some(fp) = &r.ssh_key_fingerprint {
        rows.push(row("reg-host-key", "Host key sent", fp.clone(), true));
    }
    rows.push(row(
        "reg-registered-at",
        "Registered",
        utc(r.registered_at),
        false,
    ));
    match status {
        RegistrationState::Managed { managed_since, .. } => {
            rows.push(row(
                "reg-managed",
                "Managed since",
                utc(*managed_since),
                false,
            ));
            Summary {
                headline: format!("Managed by engine {}", r.engine),
                next: None,
                awaiting: None,
            }
        }
        _ => Summary {
            headline: format!("Registered with engine {}, pending approval", r.engine),
            next: Some(
                "Approve the host in the engine's administration portal (Compute → \
                 Hosts); the engine then deploys it over SSH."
                    .to_string(),
            ),
            awaiting: None,
        },
    }
}

fn confirm_view(
    engine: &EngineAddr,
    ca: &CaFingerprints,
    previous: Option<String>,
    typed_matches: Option<bool>,
    replaces: Option<String>,
    node_name: &str,
    node_address: &str,
) -> ConfirmView {
    ConfirmView {
        engine: engine.to_string(),
        host: engine.host.clone(),
        port: engine.port,
        sha256: ca.sha256.clone(),
        sha256_base64: ca.sha256_base64(),
        sha1: ca.sha1.clone(),
        previous,
        typed_matches,
        replaces,
        node_name: node_name.to_string(),
        node_address: node_address.to_string(),
    }
}

/// What to do about an error of `kind`, where its message does not already say.
pub fn next_step(kind: ErrorKind) -> Option<&'static str> {
    match kind {
        ErrorKind::FingerprintMismatch => Some(
            "Compare with the fingerprint the engine itself shows. If the engine's CA was \
             replaced on purpose, fetch it again and confirm the new fingerprint; otherwise \
             something between this node and the engine answers in its place.",
        ),
        ErrorKind::EngineRejected => Some(
            "The engine's message says what it did not accept; correct that and register \
             again.",
        ),
        ErrorKind::UnexpectedAnswer | ErrorKind::NotAnSshKey => Some(
            "Check that the address and port are those of the engine's web server (the one \
             serving /ovirt-engine), not of another service.",
        ),
        ErrorKind::BadInput => Some("Correct the form and try again."),
        ErrorKind::Local => Some(
            "The node's journal has the details: journalctl -u hvnode-helper -u \
             hvnode-agent. nodectl register on the node's shell reports the same problem.",
        ),
        _ => None,
    }
}

fn error_view(e: &ErrorReport) -> ErrorView {
    ErrorView {
        message: e.message.clone(),
        next: next_step(e.error_kind),
    }
}

fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadInput | ErrorKind::NotConfirmed | ErrorKind::FingerprintMismatch => {
            StatusCode::BAD_REQUEST
        }
        ErrorKind::Busy => StatusCode::CONFLICT,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// The engine named by the form: `FQDN` with the port field, or `FQDN:PORT` alone.
pub fn engine_of(form: &RegisterForm) -> Result<EngineAddr, registration::Error> {
    let host = form.engine.trim();
    let port = form.port.trim();
    if port.is_empty() {
        return host.parse();
    }
    let bad = || registration::Error::BadEngineAddress(format!("{host} port {port}"));
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.matches(':').count() == 1 {
        // `engine:8443` with a port field too: one of them is a mistake.
        return Err(bad());
    }
    EngineAddr::new(host, port)
}

fn optional(text: &str) -> Option<String> {
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}

/// Reads the state (blocking); `managed` is detected as `nodectl register --status`
/// does.
fn load(sysroot: &Sysroot) -> (Option<StateView>, Option<String>) {
    match registration::current_state(sysroot) {
        Ok(file) => (Some(state_view(&file)), None),
        Err(e) => (
            None,
            Some(format!(
                "{e}; nodectl register --status reports the same, and registering again \
                 replaces the file"
            )),
        ),
    }
}

/// Reads the engine's link's status file (blocking).
fn load_link(sysroot: &Sysroot) -> LinkView {
    let read = LinkStatus::read(&sysroot.path(STATUS_PATH));
    let managed = Managed::of(&read, registration::now_unix());
    link_view(&managed, read.ok().flatten().as_ref())
}

struct Shown {
    status: StatusCode,
    form: RegisterForm,
    confirm: Option<ConfirmView>,
    error: Option<ErrorView>,
    notice: Option<String>,
}

impl Shown {
    fn form(form: RegisterForm) -> Self {
        Self {
            status: StatusCode::OK,
            form,
            confirm: None,
            error: None,
            notice: None,
        }
    }

    fn failed(form: RegisterForm, e: impl Into<StepError>) -> Self {
        let (status, error) = match e.into() {
            StepError::Report(r) => (status_of(r.error_kind), error_view(&r)),
            StepError::Helper(f) => {
                let next = match f.kind {
                    helper::FailureKind::Unavailable => Some(
                        "The console's privileged helper runs registrations: systemctl \
                         status hvnode-helper says whether it runs, journalctl -u \
                         hvnode-helper why not.",
                    ),
                    _ => None,
                };
                let message = f.message.clone();
                let status = crate::error::ApiError::from(f).status();
                (status, ErrorView { message, next })
            }
        };
        Self {
            status,
            error: Some(error),
            ..Self::form(form)
        }
    }
}

async fn show(state: &Shared, authed: &Authed, shown: Shown) -> Response {
    let root = sysroot(state);
    let loaded = tokio::task::spawn_blocking(move || (load(&root), load_link(&root))).await;
    let ((view, state_error), link) = loaded.unwrap_or_else(|e| {
        let failed = format!("reading the state failed: {e}");
        let link = link_view(
            &Managed::Unknown {
                error: failed.clone(),
            },
            None,
        );
        ((None, Some(failed)), link)
    });
    let page = RegistrationPage {
        page: PageCtx::new(authed, "/registration"),
        state: view,
        state_error,
        link,
        form: shown.form,
        confirm: shown.confirm,
        error: shown.error,
        notice: shown.notice,
        engine_command: ENGINE_FINGERPRINT_COMMAND,
    };
    (shown.status, render(&page)).into_response()
}

fn default_form() -> RegisterForm {
    RegisterForm {
        port: "443".into(),
        node_name: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..RegisterForm::default()
    }
}

/// `GET /registration`.
pub async fn page(State(state): State<Shared>, Extension(authed): Extension<Authed>) -> Response {
    show(&state, &authed, Shown::form(default_form())).await
}

fn bad_form(e: &crate::error::ApiError) -> Shown {
    Shown {
        status: StatusCode::BAD_REQUEST,
        error: Some(ErrorView {
            message: e.to_string(),
            next: next_step(ErrorKind::BadInput),
        }),
        ..Shown::form(default_form())
    }
}

/// `POST /registration/fetch`: the first step.
pub async fn fetch(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form: RegisterForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return show(&state, &authed, bad_form(&e)).await,
    };
    let shown = fetch_step(&state, &authed, form).await;
    show(&state, &authed, shown).await
}

async fn fetch_step(state: &Shared, authed: &Authed, form: RegisterForm) -> Shown {
    let engine = match engine_of(&form) {
        Ok(e) => e,
        Err(e) => return Shown::failed(form, &e),
    };
    let typed = match optional(&form.fingerprint).map(|f| f.parse::<Fingerprint>()) {
        None => None,
        Some(Ok(fp)) => Some(fp),
        Some(Err(e)) => return Shown::failed(form, &e),
    };
    let root = sysroot(state);
    let addr = engine.clone();
    let held = state.helper_of(&authed.token);
    let fetched = tokio::task::spawn_blocking(move || {
        let fetched = crate::register_run::fetch_ca(held.as_deref(), &root, &addr, typed.as_ref());
        // A fetch leaves a registered node's state as it was.
        let current = registration::load_state(&root).ok().map(|f| f.status);
        fetched.map(|c| (c, current))
    })
    .await;
    let (fetched, current) = match fetched {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Shown::failed(form, e),
        Err(e) => return Shown::failed(form, worker_failed("get-pki-trust", &e)),
    };
    // A typed fingerprint that did not match ended in an error above.
    let typed_matches = typed.map(|_| true);
    let replaces = current
        .as_ref()
        .filter(|s| s.registration().is_some())
        .map(|s| s.summary());
    let confirm = confirm_view(
        &engine,
        &fetched.ca,
        fetched.previous.map(|p| p.sha256),
        typed_matches,
        replaces,
        &form.node_name,
        &form.node_address,
    );
    Shown {
        confirm: Some(confirm),
        ..Shown::form(form)
    }
}

/// A worker thread that died: reported as nodectl reports a local failure.
fn worker_failed(step: &str, e: &tokio::task::JoinError) -> ErrorReport {
    ErrorReport {
        error_kind: ErrorKind::Local,
        message: format!("the worker running {step} failed: {e}"),
    }
}

/// `POST /registration/register`: the second step, with the fingerprint confirmed.
pub async fn register(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    body: Bytes,
) -> Response {
    let form: RegisterForm = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return show(&state, &authed, bad_form(&e)).await,
    };
    let shown = register_step(&state, &authed, form).await;
    show(&state, &authed, shown).await
}

async fn register_step(state: &Shared, authed: &Authed, form: RegisterForm) -> Shown {
    let engine = match engine_of(&form) {
        Ok(e) => e,
        Err(e) => return Shown::failed(form, &e),
    };
    let Some(fingerprint) = optional(&form.fingerprint) else {
        return Shown::failed(form, &registration::Error::ConfirmationRequired);
    };
    let fingerprint: Fingerprint = match fingerprint.parse() {
        Ok(f) => f,
        Err(e) => return Shown::failed(form, &e),
    };
    // Administrative access, and the rights behind it (an admin group, sudo rules that
    // allow every command as root), were checked again by the session layer just now
    // (`guard::require_session`, `admin::authorize`).
    let mut options = RegisterOptions::new(engine.clone());
    options.node_name = optional(&form.node_name);
    options.node_address = optional(&form.node_address);
    options.timeout = ENGINE_TIMEOUT;
    tracing::info!(user = %authed.session.user, %engine, %fingerprint, "registering with engine");
    let root = sysroot(state);
    let held = state.helper_of(&authed.token);
    let result = tokio::task::spawn_blocking(move || {
        crate::register_run::register(held.as_deref(), &root, options, fingerprint)
    })
    .await;
    match result {
        Ok(Ok(done)) => {
            tracing::info!(%engine, "registered with engine");
            let key = if done.key_added {
                "was added to"
            } else {
                "was already in"
            };
            Shown {
                notice: Some(format!(
                    "Registered with engine {engine} (unique id {}). The engine's SSH key {} {} \
                     {}.",
                    done.unique_id, done.engine_ssh_key, key, done.key_path
                )),
                ..Shown::form(default_form())
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(%engine, "registration failed: {e}");
            Shown::failed(form, e)
        }
        Err(e) => Shown::failed(form, worker_failed("register", &e)),
    }
}

/// `GET /api/v1/registration`: the persisted state and the engine's link, as
/// `nodectl register --status --json` prints them.
pub async fn api(State(state): State<Shared>) -> Result<Response, crate::error::ApiError> {
    let root = sysroot(&state);
    let (file, link) = tokio::task::spawn_blocking(move || {
        let link = LinkReport::load(&root.path(STATUS_PATH), registration::now_unix());
        (registration::current_state(&root), link)
    })
    .await
    .map_err(|e| crate::error::ApiError::Failed(format!("worker failed: {e}")))?;
    let file = file.map_err(|e| crate::error::ApiError::Failed(e.to_string()))?;
    Ok(axum::Json(serde_json::json!({
        "apiVersion": crate::api::API_VERSION,
        "kind": "Registration",
        "data": { "updatedAt": file.updated_at, "status": file.status, "vdsm": link },
    }))
    .into_response())
}

#[cfg(test)]
#[path = "register_tests.rs"]
mod tests;
