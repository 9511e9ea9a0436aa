//! The unprivileged side: asks the helper, one connection per question, and keeps a
//! login's connection open for as long as its session lasts ([`Held`]).

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use crate::frame::{self, FrameError};
use crate::proto::{
    Change, EngineAction, EngineFacts, Failure, FailureKind, Password, Refusal, RegisterStep,
    Reply, Request, VmConsoleKind,
};

/// The helper could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket (the helper is not running) or it may not be
    /// opened.
    #[error(
        "connecting to the privileged helper at {path}: {source}; is hvnode-helper.service \
         running? (systemctl status hvnode-helper)"
    )]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The request or its answer did not get through.
    #[error(
        "asking the privileged helper at {path} ({request}): {source}; see its journal (journalctl -u hvnode-helper)"
    )]
    Frame {
        path: PathBuf,
        request: &'static str,
        source: FrameError,
    },
    /// The helper answered with an error.
    #[error("the privileged helper could not answer {request}: {message}")]
    Helper {
        request: &'static str,
        message: String,
    },
    /// The helper answered something that does not answer the request (a helper of
    /// another version).
    #[error(
        "the privileged helper answered {request} with {reply:?}; are the helper and this service of the same version?"
    )]
    Unexpected { request: &'static str, reply: Reply },
}

/// A login session the helper keeps open: dropping this closes its connection, and
/// the helper then closes the session (and kills the shells it started for it).
/// Requests that act as the session's user go over this connection.
#[derive(Debug)]
pub struct Held {
    stream: Mutex<UnixStream>,
    path: PathBuf,
    timeout: Duration,
}

impl Held {
    /// Makes `change` as the session's user (the helper checks that they may
    /// administer the node). A failure to ask is [`FailureKind::Unavailable`].
    pub fn change(&self, change: Change) -> Result<(), Failure> {
        let request = Request::Change { change };
        let unavailable = |e: ClientError| Failure::new(FailureKind::Unavailable, e.to_string());
        let (reply, _) = self.exchange(&request).map_err(unavailable)?;
        match reply {
            Reply::Changed => Ok(()),
            Reply::Failed { failure } => Err(failure),
            Reply::Error { message } => Err(Failure::new(FailureKind::Failed, message)),
            reply => Err(unavailable(ClientError::Unexpected {
                request: request.name(),
                reply,
            })),
        }
    }

    /// Starts `nodectl update` for `source` (checked, or applied with `apply`) as
    /// the session's user: the read end of its output (one JSON object per line,
    /// its error output among them) and its process id.
    pub fn run_update(&self, source: &str, apply: bool) -> Result<(OwnedFd, u32), Failure> {
        self.run(Request::RunUpdate {
            source: source.to_string(),
            apply,
        })
    }

    /// Starts `nodectl register --json` for `step` as the session's user: the read
    /// end of its standard output (one JSON document) and its process id.
    pub fn register(&self, step: RegisterStep) -> Result<(OwnedFd, u32), Failure> {
        self.run(Request::Register { step })
    }

    /// Starts `nodectl diagnostics -o -` as root for the session's user (the
    /// helper checks that they may administer the node): the read end of its
    /// standard output, the report (a gzip'd tar), and its process id.
    pub fn diagnostics(&self) -> Result<(OwnedFd, u32), Failure> {
        self.run(Request::Diagnostics)
    }

    /// A request answered with a running process's output.
    fn run(&self, request: Request) -> Result<(OwnedFd, u32), Failure> {
        let unavailable = |e: ClientError| Failure::new(FailureKind::Unavailable, e.to_string());
        match self.exchange(&request).map_err(unavailable)? {
            (Reply::Running { pid }, Some(fd)) => Ok((fd, pid)),
            (Reply::Failed { failure }, _) => Err(failure),
            (Reply::Error { message }, _) => Err(Failure::new(FailureKind::Failed, message)),
            (reply, _) => Err(unavailable(ClientError::Unexpected {
                request: request.name(),
                reply,
            })),
        }
    }

    /// Whether the helper still holds the session: `false` once its connection has
    /// been closed from the helper's side (the helper stopped or restarted, and the
    /// session with it). The helper never speaks unasked, so anything readable on
    /// an idle session's connection means it has ended.
    pub fn is_open(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        // A request under way has the connection: it is open as far as can be told.
        let Ok(stream) = self.stream.try_lock() else {
            return true;
        };
        // The end of the stream reads as POLLIN; a hang-up is reported unasked.
        let mut fds = [PollFd::new(stream.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(0) => true,
            Ok(_) => false,
            Err(nix::errno::Errno::EINTR) => true,
            Err(_) => false,
        }
    }

    /// Sends `request` on the session's connection and reads the answer, with the
    /// descriptor passed along, if any.
    fn exchange(&self, request: &Request) -> Result<(Reply, Option<OwnedFd>), ClientError> {
        // One request at a time on the session's connection.
        let stream = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let failed = |source| ClientError::Frame {
            path: self.path.clone(),
            request: request.name(),
            source,
        };
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(|e| failed(FrameError::Io(e)))?;
        frame::write(&mut &*stream, request).map_err(failed)?;
        let answer = frame::read_with_fd::<Reply>(&stream).map_err(failed)?;
        // Silent again until the next request or logout.
        let _ = stream.set_read_timeout(None);
        Ok(answer)
    }

    /// A login shell for the session's user on a new terminal of `rows` × `cols`:
    /// the terminal's controlling side and the shell's process id. Closing the
    /// descriptor hangs up the terminal, which ends the shell.
    pub fn open_terminal(&self, rows: u16, cols: u16) -> Result<(OwnedFd, u32), ClientError> {
        let request = Request::OpenTerminal { rows, cols };
        match self.exchange(&request)? {
            (Reply::Terminal { pid }, Some(fd)) => Ok((fd, pid)),
            (Reply::Error { message }, _) => Err(ClientError::Helper {
                request: request.name(),
                message,
            }),
            (reply, _) => Err(ClientError::Unexpected {
                request: request.name(),
                reply,
            }),
        }
    }
}

impl Held {
    /// VM `vm`'s console of `kind` for the session's user (who must be allowed to
    /// administer the node): a socket connected to its VNC server, or its serial
    /// console's pty. Closing it closes the console.
    pub fn open_vm_console(&self, vm: &str, kind: VmConsoleKind) -> Result<OwnedFd, Failure> {
        let request = Request::OpenVmConsole {
            vm: vm.to_string(),
            kind,
        };
        let unexpected = |what: String| Failure::new(FailureKind::Failed, what);
        match self.exchange(&request) {
            Ok((Reply::VmConsole, Some(fd))) => Ok(fd),
            Ok((Reply::Failed { failure }, _)) => Err(failure),
            Ok((Reply::Error { message }, _)) => Err(unexpected(message)),
            Ok((reply, _)) => Err(unexpected(format!(
                "the helper answered {reply:?} to open_vm_console"
            ))),
            Err(e) => Err(Failure::new(FailureKind::Unavailable, e.to_string())),
        }
    }
}

/// A client of the helper at a socket path.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    timeout: Duration,
}

impl Client {
    /// A client of the helper listening at `path`. An answer that takes longer than
    /// a minute (PAM's modules can be slow, never that slow) is an error.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Logs `user` in from `client`: the session, held open until the returned
    /// [`Held`] is dropped, or why the login was refused.
    pub fn login(
        &self,
        user: &str,
        password: &str,
        client: std::net::IpAddr,
    ) -> Result<Result<Held, Refusal>, ClientError> {
        let request = Request::Login {
            user: user.to_string(),
            password: Password(password.to_string()),
            client,
        };
        let (stream, reply) = self.exchange(&request)?;
        match reply {
            Reply::LoggedIn => {
                // The session's connection stays open, silent, until logout.
                let _ = stream.set_read_timeout(None);
                Ok(Ok(Held {
                    stream: Mutex::new(stream),
                    path: self.path.clone(),
                    timeout: self.timeout,
                }))
            }
            Reply::Refused { refusal } => Ok(Err(refusal)),
            other => Err(self.unexpected(&request, other)),
        }
    }

    /// Checks `user`'s password and account without opening a session: `Ok(Ok(()))`
    /// when they are good, or why not.
    pub fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Result<(), Refusal>, ClientError> {
        let request = Request::Authenticate {
            user: user.to_string(),
            password: Password(password.to_string()),
        };
        match self.exchange(&request)?.1 {
            Reply::Authenticated => Ok(Ok(())),
            Reply::Refused { refusal } => Ok(Err(refusal)),
            other => Err(self.unexpected(&request, other)),
        }
    }

    /// Whether `user` may run every command as root by the sudo policy.
    pub fn may_administer(&self, user: &str) -> Result<bool, ClientError> {
        let request = Request::MayAdminister {
            user: user.to_string(),
        };
        match self.exchange(&request)?.1 {
            Reply::Allowed { allowed } => Ok(allowed),
            other => Err(self.unexpected(&request, other)),
        }
    }

    /// The layer store's facts, read by the helper (`lvs` and btrfs's subvolume list
    /// take privileges).
    pub fn layer_facts(&self) -> Result<layers::status::Facts, ClientError> {
        let request = Request::LayerFacts;
        match self.exchange(&request)?.1 {
            Reply::LayerFacts { facts } => Ok(*facts),
            other => Err(self.unexpected(&request, other)),
        }
    }

    /// The node's thin pools and their use, read by the helper.
    pub fn thin_pools(&self) -> Result<Vec<hostinfo::ThinPool>, ClientError> {
        let request = Request::ThinPools;
        match self.exchange(&request)?.1 {
            Reply::ThinPools { pools } => Ok(pools),
            other => Err(self.unexpected(&request, other)),
        }
    }

    /// Does what the engine asked (the engine link's connections only). A failure
    /// to ask is [`FailureKind::Unavailable`].
    pub fn engine(&self, action: EngineAction) -> Result<(), Failure> {
        let request = Request::Engine { action };
        let unavailable = |e: ClientError| Failure::new(FailureKind::Unavailable, e.to_string());
        match self.exchange(&request).map_err(unavailable)?.1 {
            Reply::Changed => Ok(()),
            Reply::Failed { failure } => Err(failure),
            other => Err(unavailable(self.unexpected(&request, other))),
        }
    }

    /// The facts only root may read that the engine asks for (the engine link's
    /// connections only).
    pub fn engine_facts(&self) -> Result<EngineFacts, ClientError> {
        let request = Request::EngineFacts;
        match self.exchange(&request)?.1 {
            Reply::EngineFacts { facts } => Ok(facts),
            other => Err(self.unexpected(&request, other)),
        }
    }

    fn unexpected(&self, request: &Request, reply: Reply) -> ClientError {
        match reply {
            Reply::Error { message } => ClientError::Helper {
                request: request.name(),
                message,
            },
            reply => ClientError::Unexpected {
                request: request.name(),
                reply,
            },
        }
    }

    /// Sends `request` on a new connection and reads the answer.
    fn exchange(&self, request: &Request) -> Result<(UnixStream, Reply), ClientError> {
        let connect = |source| ClientError::Connect {
            path: self.path.clone(),
            source,
        };
        let mut stream = UnixStream::connect(&self.path).map_err(connect)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .and_then(|()| stream.set_write_timeout(Some(self.timeout)))
            .map_err(connect)?;
        let failed = |source| ClientError::Frame {
            path: self.path.clone(),
            request: request.name(),
            source,
        };
        let written = frame::write(&mut stream, request);
        // A helper that refuses the connection (too many, or this user) answers at
        // once and closes it: the request then meets a closed socket, and the
        // answer that says why is still there to read.
        let reply = frame::read(&mut stream);
        match (written, reply) {
            (_, Ok(reply)) => Ok((stream, reply)),
            (Err(e), Err(_)) | (Ok(()), Err(e)) => Err(failed(e)),
        }
    }
}
