//! Relays a terminal between its pty's controlling side and the WebSocket. For a
//! session the privileged helper holds, the helper started the shell as the
//! session's user and handed over the pty (`SCM_RIGHTS`): this process then starts
//! no process as anyone.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use rustix::termios::Winsize;
use tokio::io::unix::AsyncFd;

use super::{Control, may_stay_open, size};
use crate::state::{Authed, Shared};

/// Relays the terminal `fd` (a pty's controlling side, its shell process `pid`) for
/// the session of `authed` until the socket or the shell ends, or the session may no
/// longer keep it open.
pub(super) async fn run(
    mut socket: WebSocket,
    state: &Shared,
    authed: &Authed,
    fd: OwnedFd,
    pid: u32,
) -> Result<(), String> {
    let user = &authed.session.user;
    rustix::io::ioctl_fionbio(&fd, true)
        .map_err(|e| format!("making the terminal non-blocking: {e}"))?;
    // The AsyncFd owns the descriptor outright (an OwnedFd nothing else holds), so
    // what made `new` deprecated (registering a descriptor someone else may close
    // while it is registered) cannot happen; `register`, its replacement, is
    // `unsafe`, which the workspace forbids.
    #[allow(deprecated)]
    let pty = AsyncFd::new(fd).map_err(|e| format!("watching the terminal: {e}"))?;
    tracing::info!(user = %user, pid, "terminal opened");
    let mut buf = vec![0u8; 8192];
    let mut check = tokio::time::interval(Duration::from_secs(5));
    let idle = state.config.idle_timeout();
    loop {
        tokio::select! {
            n = read(&pty, &mut buf) => {
                // EIO once the shell has exited and the pty is hung up.
                let n = match n { Ok(0) | Err(_) => break, Ok(n) => n };
                if socket.send(Message::Binary(buf[..n].to_vec().into())).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => {
                match msg {
                    Some(Ok(Message::Binary(b))) => {
                        if write_all(&pty, &b).await.is_err() { break; }
                    }
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(Control { resize: Some((rows, cols)) }) = serde_json::from_str(&t) {
                            let (ws_row, ws_col) = size(rows, cols);
                            let _ = rustix::termios::tcsetwinsize(
                                pty.get_ref(),
                                Winsize { ws_row, ws_col, ws_xpixel: 0, ws_ypixel: 0 },
                            );
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    _ => break,
                }
            }
            _ = check.tick() => {
                if !may_stay_open(state, &authed.token, idle).await { break; }
            }
        }
    }
    // Closing the only descriptor of the pty's controlling side hangs it up: the
    // shell gets SIGHUP. The helper kills what is left when the session ends.
    drop(pty);
    let _ = socket.send(Message::Close(None)).await;
    tracing::info!(user = %user, pid, "terminal closed");
    Ok(())
}

pub(crate) async fn read(pty: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut ready = pty.readable().await?;
        match ready.try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(io::Error::from))
        {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

pub(crate) async fn write_all(pty: &AsyncFd<OwnedFd>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let mut ready = pty.writable().await?;
        match ready.try_io(|fd| rustix::io::write(fd.get_ref(), data).map_err(io::Error::from)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
