//! The privileged side of the node's network services.
//!
//! A process that parses bytes from the network (the web console on 9090, later the
//! VDSM service on 54321) must not be root: one parser bug would be root on every
//! node. What such a process needs done as root it asks of a small helper over a
//! local socket, one typed request at a time ([`proto::Request`]): there is no "run
//! this command" request, so the most a compromised client can do is what the
//! requests allow, and each request is decided by the helper, not the client.
//!
//! - **Who may ask.** The helper reads the peer's credentials from the kernel
//!   (`SO_PEERCRED`) when it accepts a connection and serves only root and the users
//!   it was told to ([`server::Options::allowed_uids`]); anyone else is closed
//!   without an answer beyond one error frame.
//! - **Sessions are connections.** A [`proto::Request::Login`] that succeeds turns
//!   its connection into the login's session: the helper holds what the login
//!   opened (a PAM session) for as long as the connection stays open, and closes it
//!   when the client closes it (logout, expiry), or when the client dies. A web
//!   process that crashes cannot leave sessions open behind it.
//! - **Frames.** Each message is a 4-byte big-endian length and that many bytes of
//!   JSON ([`frame`]), at most [`frame::MAX_FRAME`]; a longer or malformed one ends
//!   the connection after an error frame.
//!
//! The helper is synchronous, a thread per connection: its clients are a handful of
//! local services, each login's connection is parked until logout (as the PAM
//! session it holds would be anyway), and the number of connections is capped
//! ([`server::Options::max_connections`]).

pub mod client;
pub mod frame;
pub mod proto;
pub mod server;

pub use client::{Client, ClientError, Held};
pub use proto::{
    Change, EngineAction, EngineFacts, Failure, FailureKind, Refusal, RegisterStep, Reply, Request,
    VmConsoleKind, VmEdit, VmSpec,
};
pub use server::{Backend, Options, Server, Stopper};

/// Where the node's helper listens.
pub const DEFAULT_SOCKET: &str = "/run/hvnode-helper/socket";

/// Where the helper listens for the engine's link (hvnode-vdsm), when it serves
/// one (`hvnode-helper --engine-user`): a socket of that user alone.
pub const DEFAULT_ENGINE_SOCKET: &str = "/run/hvnode-helper/engine";
