//! A client for libvirt's remote protocol: XDR messages over the local daemon's unix
//! socket (libvirtd, or a modular daemon such as virtqemud), for the calls a node's
//! services make: list domains, read their facts and XML, start, shut down, force
//! off and reboot them, read the host's capabilities, list the host's devices and
//! read their XML; and, for the console's VM pages, define, change and remove
//! domains, their snapshots, storage pools and volumes, and virtual networks.
//!
//! It speaks the protocol itself instead of linking `libvirt.so`, which keeps libvirt's
//! C client library (and the fifty-odd libraries it loads) out of the process, and out
//! of the parsing of what arrives over the socket. The README tells why in full.
//!
//! ```no_run
//! use hvnode_libvirt::{Client, Options};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), hvnode_libvirt::Error> {
//! let client = Client::connect_with(
//!     "qemu:///system",
//!     Options { call_timeout: Duration::from_secs(30), read_only: false },
//! )?;
//! // Domains that disappear during the listing are skipped.
//! let states = client.for_each_domain(|c, dom| {
//!     Ok((dom.name.clone(), c.domain_info(dom)?.state))
//! })?;
//! for (name, state) in states {
//!     println!("{name}: {state}");
//! }
//! match client.lookup_domain("web1") {
//!     Ok(dom) => client.shutdown_domain(&dom)?,
//!     Err(e) if e.is_no_domain() => println!("no such domain"),
//!     Err(e) => return Err(e),
//! }
//! client.close()
//! # }
//! ```
//!
//! Every call has a deadline ([`Options::call_timeout`]); failures are an [`Error`]
//! whose kind tells the connection's failures from libvirt's refusals
//! ([`RemoteError`], with libvirt's error number, domain and message).

pub mod caps;
mod client;
mod error;
mod manage;
mod objects;
mod procedure;
mod stream;
mod target;
mod types;
pub mod wire;
mod xdr;

pub use caps::SecModel;
pub use client::{Client, Options};
pub use error::{Error, ProtocolError, RemoteError, code};
pub use manage::{
    AFFECT_CONFIG, AFFECT_LIVE, MAXIMUM, REVERT_RUNNING, UNDEFINE_NVRAM,
    UNDEFINE_SNAPSHOTS_METADATA,
};
pub use objects::{
    BlockInfo, BlockStats, InterfaceStats, Network, PoolInfo, PoolState, Snapshot, StoragePool,
    StorageVol, VolInfo,
};
pub use stream::{CONSOLE_FORCE, Chunk, ConsoleStream, STREAM_CHUNK};
pub use target::Target;
pub use types::{AuthType, Domain, DomainInfo, DomainState};
pub use wire::{Answer, decode_reply};
