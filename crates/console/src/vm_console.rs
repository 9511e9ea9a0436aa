//! A VM's graphical display and serial console in the browser: `GET
//! /vms/{name}/vnc` and `GET /vms/{name}/serial` are WebSockets whose binary
//! frames carry the bytes of the VM's VNC server (RFB, for noVNC) and of its first
//! serial console (for xterm.js), both ways.
//!
//! The privileged helper opens them ([`open_here`], in this process when no helper
//! holds the session) and passes the descriptor: a socket connected to the VNC
//! server (the display's unix socket, or its port on the loopback address; a VNC
//! port is never opened to the network for this), or one end of a socket pair
//! whose other end the helper relays to libvirt's console stream
//! (`virDomainOpenConsole`, on a connection of its own, so that libvirt's one
//! session per console holds). The web process can then speak RFB or write to
//! the console and nothing else: it never holds a read-write libvirt connection.
//! As for the terminal, opening one needs administrative access, and it is closed
//! when the socket closes, the session ends or its administrative access goes
//! (checked every 5 s).
//!
//! A browser's WebSocket does not see why an upgrade was refused, so the same URL
//! without the upgrade answers the same refusal (its status and reason as JSON),
//! or 426 when the console could be opened: the page asks it after a failed
//! socket.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use axum::Extension;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use helper::{Failure, FailureKind, VmConsoleKind};
use tokio::io::unix::AsyncFd;

use crate::error::ApiError;
use crate::state::{Authed, Shared};
use crate::terminal::relay::{read, write_all};
use crate::vms::{Libvirt, VirtError};

/// Where a VM's VNC server listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VncTarget {
    /// A unix socket (`<listen type='socket'>`): no TCP port at all.
    Unix(String),
    /// A TCP port on `host` (the loopback address unless the display listens on
    /// one address only).
    Tcp { host: String, port: u16 },
}

/// The VNC server of a running domain's live XML.
pub fn vnc_target(xml: &str) -> Result<VncTarget, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("domain XML: {e}"))?;
    let g = doc
        .descendants()
        .find(|n| n.has_tag_name("graphics") && n.attribute("type") == Some("vnc"))
        .ok_or("the VM has no VNC display (add <graphics type='vnc'/> to it)")?;
    let listen = g.children().find(|n| n.has_tag_name("listen"));
    let socket = g
        .attribute("socket")
        .or_else(|| listen.and_then(|l| l.attribute("socket")));
    if let Some(path) = socket {
        return Ok(VncTarget::Unix(path.to_string()));
    }
    let port = g
        .attribute("port")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or("the VM's VNC display has no port yet: is the VM running?")?;
    let address = listen
        .and_then(|l| l.attribute("address"))
        .or_else(|| g.attribute("listen"))
        .unwrap_or("127.0.0.1");
    let host = match address {
        "" | "0.0.0.0" | "::" | "localhost" => "127.0.0.1",
        a => a,
    };
    Ok(VncTarget::Tcp {
        host: host.to_string(),
        port,
    })
}

/// Opens VM `vm`'s console of `kind` in this process (as root in the helper).
pub fn open_here(libvirt: &Libvirt, vm: &str, kind: VmConsoleKind) -> Result<OwnedFd, Failure> {
    let (info, xml) = libvirt
        .inspect(vm, |conn, dom, xml| {
            let _ = (conn, dom);
            Ok(xml.to_string())
        })
        .map_err(|e| match e {
            VirtError::NoSuchVm(_) => Failure::new(FailureKind::NotFound, e.to_string()),
            VirtError::Unavailable { .. } => Failure::new(FailureKind::Unavailable, e.to_string()),
            VirtError::Failed(m) => Failure::new(FailureKind::Failed, m),
        })?;
    if !info.running && info.state != "paused" {
        return Err(Failure::new(
            FailureKind::Conflict,
            format!("VM {vm:?} is {}: start it to see its console", info.state),
        ));
    }
    let failed = |m: String| Failure::new(FailureKind::Failed, m);
    match kind {
        VmConsoleKind::Vnc => match vnc_target(&xml).map_err(failed)? {
            VncTarget::Unix(path) => std::os::unix::net::UnixStream::connect(&path)
                .map(OwnedFd::from)
                .map_err(|e| failed(format!("connecting to the VNC socket {path}: {e}"))),
            VncTarget::Tcp { host, port } => std::net::TcpStream::connect((host.as_str(), port))
                .and_then(|s| {
                    s.set_nodelay(true)?;
                    Ok(OwnedFd::from(s))
                })
                .map_err(|e| {
                    failed(format!(
                        "connecting to the VNC server at {host}:{port}: {e}"
                    ))
                }),
        },
        VmConsoleKind::Serial => serial_stream(libvirt.uri(), vm),
    }
}

/// The VM's first serial console through libvirt's console stream, relayed by two
/// threads to a socket pair: the other end is returned. The relay ends when either
/// side does (the browser's socket closes, or the VM stops or another session
/// takes the console).
fn serial_stream(uri: &str, vm: &str) -> Result<OwnedFd, Failure> {
    use hvnode_libvirt::{CONSOLE_FORCE, Chunk, Client};
    use std::io::{Read, Write};
    let doing = format!("opening the serial console of VM {vm:?}");
    let client = Client::connect(uri).map_err(|e| crate::vm_manage::lv_failure(&doing, &e))?;
    let dom = client
        .lookup_domain(vm)
        .map_err(|e| crate::vm_manage::lv_failure(&doing, &e))?;
    let mut from_vm = client
        .open_console(&dom, None, CONSOLE_FORCE)
        .map_err(|e| crate::vm_manage::lv_failure(&doing, &e))?;
    let failed = |e: String| Failure::new(FailureKind::Failed, format!("{doing}: {e}"));
    let mut to_vm = from_vm.try_clone().map_err(|e| failed(e.to_string()))?;
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| failed(e.to_string()))?;
    let mut to_web = ours.try_clone().map_err(|e| failed(e.to_string()))?;
    let mut from_web = ours;
    let name = vm.to_string();
    std::thread::Builder::new()
        .name("console-out".into())
        .spawn(move || {
            loop {
                match from_vm.read() {
                    Ok(Chunk::Data(b)) => {
                        if to_web.write_all(&b).is_err() {
                            break;
                        }
                    }
                    Ok(Chunk::End) => break,
                    Err(e) => {
                        tracing::info!(vm = %name, "serial console stream ended: {e}");
                        break;
                    }
                }
            }
            let _ = to_web.shutdown(std::net::Shutdown::Both);
        })
        .map_err(|e| failed(format!("a thread for the console: {e}")))?;
    std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match from_web.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to_vm.write(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
            to_vm.finish();
        })
        .map_err(|e| failed(format!("a thread for the console: {e}")))?;
    Ok(OwnedFd::from(theirs))
}

/// The console, through the helper holding the session or here; refused without
/// administrative access.
async fn open(
    state: &Shared,
    authed: &Authed,
    vm: String,
    kind: VmConsoleKind,
) -> Result<OwnedFd, ApiError> {
    crate::admin::authorize(state, &authed.token, &authed.session).await?;
    let held = state.helper_of(&authed.token);
    let libvirt = state.libvirt.clone();
    tokio::task::spawn_blocking(move || match held {
        Some(held) => held.open_vm_console(&vm, kind),
        None => open_here(&libvirt, &vm, kind),
    })
    .await
    .map_err(|e| ApiError::Failed(format!("opening the console: {e}")))?
    .map_err(ApiError::from)
}

/// `GET /vms/{name}/vnc` (WebSocket, subprotocol `binary` as noVNC asks).
pub async fn vnc(
    state: State<Shared>,
    authed: Extension<Authed>,
    name: Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    socket(state, authed, name, ws, VmConsoleKind::Vnc).await
}

/// `GET /vms/{name}/serial` (WebSocket).
pub async fn serial(
    state: State<Shared>,
    authed: Extension<Authed>,
    name: Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    socket(state, authed, name, ws, VmConsoleKind::Serial).await
}

async fn socket(
    State(state): State<Shared>,
    Extension(authed): Extension<Authed>,
    Path(name): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    kind: VmConsoleKind,
) -> Response {
    // Opened before the upgrade, so that a refusal is an HTTP status with its
    // reason rather than a socket that closes.
    let fd = match open(&state, &authed, name.clone(), kind).await {
        Ok(fd) => fd,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        // A plain GET, asking why a socket was refused: this one would not be.
        Err(_) => {
            drop(fd);
            let body = serde_json::json!({
                "error": format!("the console of VM {name:?} can be opened: connect with a WebSocket"),
                "status": StatusCode::UPGRADE_REQUIRED.as_u16(),
            });
            return (StatusCode::UPGRADE_REQUIRED, axum::Json(body)).into_response();
        }
    };
    ws.protocols(["binary"])
        .max_message_size(1024 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(e) = relay(socket, &state, &authed, fd, &name, kind).await {
                tracing::warn!(user = %authed.session.user, vm = %name, ?kind, "VM console: {e}");
            }
        })
}

/// Relays `fd` and the WebSocket until either ends or the session may no longer
/// keep it open.
async fn relay(
    mut socket: WebSocket,
    state: &Shared,
    authed: &Authed,
    fd: OwnedFd,
    vm: &str,
    kind: VmConsoleKind,
) -> Result<(), String> {
    rustix::io::ioctl_fionbio(&fd, true).map_err(|e| format!("non-blocking console: {e}"))?;
    // As for the terminal: the AsyncFd owns the descriptor outright.
    #[allow(deprecated)]
    let fd = AsyncFd::new(fd).map_err(|e| format!("watching the console: {e}"))?;
    let user = &authed.session.user;
    tracing::info!(user = %user, vm, ?kind, "VM console opened");
    let mut buf = vec![0u8; 64 * 1024];
    let mut check = tokio::time::interval(Duration::from_secs(5));
    let idle = state.config.idle_timeout();
    loop {
        tokio::select! {
            n = read(&fd, &mut buf) => {
                let n = match n {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if socket.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => {
                match msg {
                    Some(Ok(Message::Binary(b))) => {
                        if write_all(&fd, &b).await.is_err() { break; }
                    }
                    Some(Ok(Message::Text(t))) => {
                        if write_all(&fd, t.as_bytes()).await.is_err() { break; }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => break,
                }
            }
            _ = check.tick() => {
                if !crate::terminal::may_stay_open(state, &authed.token, idle).await { break; }
            }
        }
    }
    drop(fd);
    let _ = socket.send(Message::Close(None)).await;
    tracing::info!(user = %user, vm, ?kind, "VM console closed");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn vnc_on_loopback_on_any_address_and_on_a_unix_socket() {
        let tcp = "<domain><devices><graphics type='vnc' port='5903' autoport='yes' listen='127.0.0.1'>\
                   <listen type='address' address='127.0.0.1'/></graphics></devices></domain>";
        assert_eq!(
            vnc_target(tcp).unwrap(),
            VncTarget::Tcp {
                host: "127.0.0.1".into(),
                port: 5903
            }
        );
        let any = "<domain><devices><graphics type='vnc' port='5904' listen='0.0.0.0'/></devices></domain>";
        assert_eq!(
            vnc_target(any).unwrap(),
            VncTarget::Tcp {
                host: "127.0.0.1".into(),
                port: 5904
            }
        );
        let unix = "<domain><devices><graphics type='vnc' socket='/run/v.sock'>\
                    <listen type='socket' socket='/run/v.sock'/></graphics></devices></domain>";
        assert_eq!(
            vnc_target(unix).unwrap(),
            VncTarget::Unix("/run/v.sock".into())
        );
        let stopped =
            "<domain><devices><graphics type='vnc' port='-1' autoport='yes'/></devices></domain>";
        assert!(
            vnc_target(stopped)
                .unwrap_err()
                .contains("is the VM running")
        );
        let none = "<domain><devices/></domain>";
        assert!(vnc_target(none).unwrap_err().contains("no VNC display"));
    }
}
