//! The connection: calls over the daemon's unix socket, each bounded by a deadline.

use std::io::{ErrorKind, Read, Write};
use std::ops::{Deref, DerefMut};
use std::os::unix::net::UnixStream;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::target::Target;
use crate::types::{AuthType, Domain, DomainInfo};
use crate::wire::{self, Incoming, LEN_WORD, Procedure};
use crate::xdr::{Enc, STRING_MAX};

type Result<T> = std::result::Result<T, Error>;

/// How a client behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// How long one call may take, from sending its arguments to the last byte of its
    /// answer. A daemon that trickles its answer still ends the call at this deadline.
    /// Asking for the capabilities can make libvirtd probe qemu, which takes seconds.
    pub call_timeout: Duration,
    /// Open the connection read-only (`VIR_CONNECT_RO`), on the daemon's read-only
    /// socket (`libvirt-sock-ro`), which any local user may reach: domains, their
    /// state, XML and statistics can be read, nothing changed (libvirt refuses every
    /// change with "read only access prevents …").
    pub read_only: bool,
}

impl Options {
    /// The deadline of a call when none is given.
    pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(60);
}

impl Default for Options {
    fn default() -> Self {
        Self {
            call_timeout: Self::DEFAULT_CALL_TIMEOUT,
            read_only: false,
        }
    }
}

/// `virConnectOpen`'s flag for a read-only connection (`VIR_CONNECT_RO`).
const CONNECT_RO: u32 = 1;

/// A connection to the libvirt daemon serving one URI.
///
/// Calls take `&self`, so one client can be shared between threads (in an `Arc`).
/// The connection is locked for one call at a time, never for a sequence of calls,
/// and handed to waiting callers in the order they came: a listing of many domains
/// (one call for the list, then a few per domain) lets the other threads' calls in
/// between its own, so a slow listing delays another caller by at most the call in
/// flight (itself bounded by the deadline), never by the whole listing. The protocol
/// would allow several calls in flight on one socket (replies carry their call's
/// serial), but handing replies to waiting callers needs a reader thread; with one
/// call at a time, nothing has to be demultiplexed and a late reply can never be
/// taken for another call's.
///
/// After a transport failure, a timeout or a malformed message, the connection is
/// unusable and every later call fails with [`Error::Broken`]: connect again.
#[derive(Debug)]
pub struct Client {
    target: Target,
    /// The order in which callers get the connection.
    turns: Turns,
    /// Only ever locked by the caller whose turn it is.
    conn: Mutex<Conn>,
    timeout: Mutex<Duration>,
}

/// The socket and what goes with it, behind the client's lock.
#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    serial: u32,
    /// Why the connection is unusable, once it is.
    broken: Option<String>,
}

/// A lock that hands the connection to waiting callers in the order they came.
/// (A `Mutex` alone lets the thread that just unlocked it take it again at once, so
/// a listing's next call could overtake, again and again, a caller waiting since
/// the listing's previous call.)
#[derive(Debug, Default)]
struct Turns {
    state: Mutex<TurnState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct TurnState {
    /// The ticket the next caller draws.
    next: u64,
    /// The ticket whose turn it is.
    serving: u64,
}

impl Turns {
    /// Waits for the caller's turn.
    fn take(&self) -> Turn<'_> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = state.next;
        state.next += 1;
        while state.serving != mine {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Turn { turns: self }
    }

    /// The turn if nobody has it or waits for it.
    fn try_take(&self) -> Option<Turn<'_>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.next != state.serving {
            return None;
        }
        state.next += 1;
        Some(Turn { turns: self })
    }
}

/// One caller's turn; the next caller's begins when it is dropped, even in a panic.
#[derive(Debug)]
struct Turn<'a> {
    turns: &'a Turns,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self
            .turns
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.serving += 1;
        drop(state);
        self.turns.changed.notify_all();
    }
}

/// The connection during one caller's turn. The connection's guard is released
/// before the turn passes on (fields drop in order).
#[derive(Debug)]
struct Locked<'a> {
    conn: MutexGuard<'a, Conn>,
    _turn: Turn<'a>,
}

impl Deref for Locked<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// The instant a call must be over by.
#[derive(Debug, Clone, Copy)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    fn after(timeout: Duration) -> Self {
        let now = Instant::now();
        // A timeout too long for the clock (`Duration::MAX`) means a century.
        let century = Duration::from_secs(100 * 365 * 24 * 3600);
        let at = now
            .checked_add(timeout)
            .or_else(|| now.checked_add(century))
            .unwrap_or(now);
        Self { at, timeout }
    }

    /// The time left, or the timeout error once there is none.
    fn left(&self, procedure: Procedure) -> Result<Duration> {
        self.at
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Error::Timeout {
                procedure: procedure.api_name(),
                timeout: self.timeout,
            })
    }
}

impl Client {
    /// Connects to the daemon serving the local `uri` (`qemu:///system`,
    /// `test:///default`, `qemu+unix:///system?socket=PATH`) with the default
    /// [`Options`]: see [`Client::connect_to`].
    pub fn connect(uri: &str) -> Result<Self> {
        Self::connect_with(uri, Options::default())
    }

    /// [`Client::connect`] with `options`.
    pub fn connect_with(uri: &str, options: Options) -> Result<Self> {
        let target = Target::from_uri(uri)?;
        let target = if options.read_only {
            target.read_only()
        } else {
            target
        };
        Self::connect_to(target, options)
    }

    /// Connects to `target.socket`, authenticates (none, or polkit, which libvirtd
    /// checks against the connecting process's user) and opens `target.name`.
    pub fn connect_to(target: Target, options: Options) -> Result<Self> {
        check_arg("the URI", &target.name)?;
        let stream = UnixStream::connect(&target.socket).map_err(|source| Error::Connect {
            socket: target.socket.clone(),
            source,
        })?;
        let client = Self {
            turns: Turns::default(),
            conn: Mutex::new(Conn {
                stream,
                serial: 0,
                broken: None,
            }),
            timeout: Mutex::new(options.call_timeout),
            target,
        };
        client.authenticate()?;
        let flags = if options.read_only { CONNECT_RO } else { 0 };
        let mut args = Enc::default();
        args.optional_string(Some(&client.target.name)).u32(flags);
        client.call(Procedure::ConnectOpen, &args.0)?;
        Ok(client)
    }

    fn authenticate(&self) -> Result<()> {
        let answer = self.call(Procedure::AuthList, &[])?;
        let types = wire::decode_auth_list(&answer).map_err(protocol(Procedure::AuthList))?;
        if types.is_empty() || types.contains(&AuthType::None) {
            return Ok(());
        }
        if !types.contains(&AuthType::Polkit) {
            return Err(Error::AuthUnsupported {
                socket: self.target.socket.clone(),
            });
        }
        self.call(Procedure::AuthPolkit, &[]).map(drop)
    }

    /// Where this client is connected.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The deadline of each call.
    pub fn call_timeout(&self) -> Duration {
        *self.timeout.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the deadline of the calls from now on.
    pub fn set_call_timeout(&self, timeout: Duration) {
        *self.timeout.lock().unwrap_or_else(PoisonError::into_inner) = timeout;
    }

    /// Checks, without a call, that the connection is still usable: no earlier
    /// failure, the daemon has not hung up, and nothing unasked for is waiting
    /// (this client registers for no events). A connection busy with another
    /// thread's call counts as usable. Call it before reusing a client that was
    /// idle, and connect again if it fails.
    pub fn check_alive(&self) -> Result<()> {
        let Some(turn) = self.turns.try_take() else {
            return Ok(());
        };
        let mut conn = self.lock_conn(turn);
        if let Some(reason) = &conn.broken {
            return Err(Error::Broken {
                reason: reason.clone(),
            });
        }
        let result = conn.peek_idle();
        if let Err(e) = &result {
            conn.broken = Some(e.to_string());
        }
        result
    }

    /// Closes the connection politely (`virConnectClose`); dropping the client
    /// closes the socket without it.
    pub fn close(self) -> Result<()> {
        self.call(Procedure::ConnectClose, &[]).map(drop)
    }

    /// The host's capabilities XML (`virConnectGetCapabilities`).
    pub fn capabilities(&self) -> Result<String> {
        let p = Procedure::ConnectGetCapabilities;
        wire::decode_string(&self.call(p, &[])?, "capabilities").map_err(protocol(p))
    }

    /// All domains, running or defined (`virConnectListAllDomains` without filter).
    pub fn list_domains(&self) -> Result<Vec<Domain>> {
        let p = Procedure::ConnectListAllDomains;
        let mut args = Enc::default();
        args.i32(1).u32(0); // need_results, flags
        wire::decode_domain_list(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// The names of all host devices (`virConnectListAllNodeDevices` without
    /// filter): `computer`, `pci_0000_00_1f_2`, `net_eth0_…`, ….
    pub fn list_node_devices(&self) -> Result<Vec<String>> {
        let p = Procedure::ConnectListAllNodeDevices;
        let mut args = Enc::default();
        args.i32(1).u32(0); // need_results, flags
        wire::decode_node_device_list(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// A host device's XML (`virNodeDeviceGetXMLDesc`).
    pub fn node_device_xml(&self, name: &str) -> Result<String> {
        check_arg("a node device name", name)?;
        let p = Procedure::NodeDeviceGetXmlDesc;
        let mut args = Enc::default();
        args.string(name).u32(0);
        wire::decode_string(&self.call(p, &args.0)?, "node device XML").map_err(protocol(p))
    }

    /// What the hypervisor offers its domains (`virConnectGetDomainCapabilities`):
    /// the CPU models usable on this host among them. Each argument left out is
    /// libvirt's default (the host's architecture, the emulator's default
    /// machine). libvirt answers it on a read-write connection only.
    pub fn domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
    ) -> Result<String> {
        for (what, v) in [
            ("an emulator path", emulator),
            ("an architecture", arch),
            ("a machine type", machine),
            ("a virtualization type", virttype),
        ] {
            if let Some(v) = v {
                check_arg(what, v)?;
            }
        }
        let p = Procedure::ConnectGetDomainCapabilities;
        let mut args = Enc::default();
        args.optional_string(emulator)
            .optional_string(arch)
            .optional_string(machine)
            .optional_string(virttype)
            .u32(0);
        wire::decode_string(&self.call(p, &args.0)?, "domain capabilities").map_err(protocol(p))
    }

    /// Lists the domains and runs `each` on every one of them, skipping those that
    /// disappear meanwhile (where `each` fails with `VIR_ERR_NO_DOMAIN`): a domain
    /// undefined or a transient one stopped between the listing and its own calls is
    /// not an error of the listing. Any other failure ends the listing.
    pub fn for_each_domain<T>(
        &self,
        mut each: impl FnMut(&Self, &Domain) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for dom in self.list_domains()? {
            match each(self, &dom) {
                Ok(t) => out.push(t),
                Err(e) if e.is_no_domain() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The domain named `name` (`virDomainLookupByName`); a missing one is a
    /// [`RemoteError`](crate::RemoteError) for which `is_no_domain()` holds.
    pub fn lookup_domain(&self, name: &str) -> Result<Domain> {
        check_arg("a domain name", name)?;
        let p = Procedure::DomainLookupByName;
        let mut args = Enc::default();
        args.string(name);
        wire::decode_domain(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// The domain with the UUID `uuid` (`virDomainLookupByUUID`).
    pub fn lookup_domain_by_uuid(&self, uuid: &[u8; 16]) -> Result<Domain> {
        let p = Procedure::DomainLookupByUuid;
        let mut args = Enc::default();
        args.uuid(uuid);
        wire::decode_domain(&self.call(p, &args.0)?).map_err(protocol(p))
    }

    /// The domain's state, memory, vCPUs and CPU time (`virDomainGetInfo`).
    pub fn domain_info(&self, dom: &Domain) -> Result<DomainInfo> {
        let p = Procedure::DomainGetInfo;
        wire::decode_domain_info(&self.domain_call(p, dom, None)?).map_err(protocol(p))
    }

    /// The domain's XML (`virDomainGetXMLDesc`): the live one of a running domain,
    /// with `flags` as libvirt's (`VIR_DOMAIN_XML_INACTIVE` is 2, …).
    pub fn domain_xml(&self, dom: &Domain, flags: u32) -> Result<String> {
        let p = Procedure::DomainGetXmlDesc;
        wire::decode_string(&self.domain_call(p, dom, Some(flags))?, "domain XML")
            .map_err(protocol(p))
    }

    /// Whether the domain starts with the host (`virDomainGetAutostart`).
    pub fn domain_autostart(&self, dom: &Domain) -> Result<bool> {
        let p = Procedure::DomainGetAutostart;
        wire::decode_flag(&self.domain_call(p, dom, None)?, "autostart").map_err(protocol(p))
    }

    /// Whether the domain is defined, not only running (`virDomainIsPersistent`).
    pub fn domain_is_persistent(&self, dom: &Domain) -> Result<bool> {
        let p = Procedure::DomainIsPersistent;
        wire::decode_flag(&self.domain_call(p, dom, None)?, "persistence").map_err(protocol(p))
    }

    /// Starts a defined domain (`virDomainCreate`).
    pub fn start_domain(&self, dom: &Domain) -> Result<()> {
        self.domain_call(Procedure::DomainCreate, dom, None)
            .map(drop)
    }

    /// Asks the guest to shut down (`virDomainShutdown`); returns once asked.
    pub fn shutdown_domain(&self, dom: &Domain) -> Result<()> {
        self.domain_call(Procedure::DomainShutdown, dom, None)
            .map(drop)
    }

    /// Stops the domain at once, like pulling the plug (`virDomainDestroy`).
    pub fn destroy_domain(&self, dom: &Domain) -> Result<()> {
        self.domain_call(Procedure::DomainDestroy, dom, None)
            .map(drop)
    }

    /// Pauses the domain's vCPUs, keeping its memory (`virDomainSuspend`).
    pub fn suspend_domain(&self, dom: &Domain) -> Result<()> {
        self.domain_call(Procedure::DomainSuspend, dom, None)
            .map(drop)
    }

    /// Lets a paused domain run again (`virDomainResume`).
    pub fn resume_domain(&self, dom: &Domain) -> Result<()> {
        self.domain_call(Procedure::DomainResume, dom, None)
            .map(drop)
    }

    /// Asks the guest to reboot (`virDomainReboot`, `flags` as libvirt's; 0 lets
    /// the hypervisor choose how).
    pub fn reboot_domain(&self, dom: &Domain, flags: u32) -> Result<()> {
        self.domain_call(Procedure::DomainReboot, dom, Some(flags))
            .map(drop)
    }

    pub(crate) fn domain_call(
        &self,
        p: Procedure,
        dom: &Domain,
        flags: Option<u32>,
    ) -> Result<Vec<u8>> {
        check_arg("a domain name", &dom.name)?;
        let mut args = Enc::default();
        args.domain(dom);
        if let Some(f) = flags {
            args.u32(f);
        }
        self.call(p, &args.0)
    }

    /// One call under the lock: fails at once on a broken connection, and breaks it
    /// on a failure that leaves the stream in an unknown state.
    pub(crate) fn call(&self, procedure: Procedure, args: &[u8]) -> Result<Vec<u8>> {
        let timeout = self.call_timeout();
        let mut conn = self.lock_conn(self.turns.take());
        if let Some(reason) = &conn.broken {
            return Err(Error::Broken {
                reason: reason.clone(),
            });
        }
        let result = conn.call(procedure, args, timeout);
        if let Err(e) = &result {
            if e.breaks_connection() {
                conn.broken = Some(e.to_string());
            }
        }
        result
    }

    /// The connection's socket and the serial its next call would take, once
    /// nothing else may use the client (a stream takes the connection over).
    pub(crate) fn into_parts(self) -> Result<(UnixStream, u32)> {
        let conn = self
            .conn
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = conn.broken {
            return Err(Error::Broken { reason });
        }
        Ok((conn.stream, conn.serial))
    }

    fn lock_conn<'a>(&'a self, turn: Turn<'a>) -> Locked<'a> {
        let conn = self
            .conn
            .lock()
            .unwrap_or_else(|p| poisoned(p.into_inner()));
        Locked { conn, _turn: turn }
    }
}

/// A connection whose lock was poisoned: a thread panicked during a call, so the
/// stream may hold half a message.
fn poisoned(mut conn: MutexGuard<'_, Conn>) -> MutexGuard<'_, Conn> {
    conn.broken
        .get_or_insert_with(|| "a call was interrupted by a panic".to_string());
    conn
}

pub(crate) fn protocol(procedure: Procedure) -> impl Fn(crate::ProtocolError) -> Error {
    move |problem| Error::Protocol {
        procedure: procedure.api_name(),
        problem,
    }
}

/// A string the client sends: no NUL byte (libvirtd reads C strings) and at most
/// `REMOTE_STRING_MAX` bytes.
pub(crate) fn check_arg(what: &'static str, s: &str) -> Result<()> {
    let reason = if s.contains('\0') {
        "it contains a NUL byte".to_string()
    } else if s.len() > STRING_MAX {
        format!("{} bytes exceed REMOTE_STRING_MAX ({STRING_MAX})", s.len())
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument { what, reason })
}

impl Conn {
    /// Sends the call and waits for its reply, skipping events, all by one deadline.
    fn call(&mut self, procedure: Procedure, args: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        let deadline = Deadline::after(timeout);
        self.send(
            &wire::encode_call(procedure, serial, args),
            procedure,
            deadline,
        )?;
        loop {
            let message = self.receive(procedure, deadline)?;
            match wire::classify(&message).map_err(protocol(procedure))? {
                Incoming::Event => continue,
                Incoming::Reply { header, body } => {
                    wire::check_reply(&header, procedure, serial).map_err(protocol(procedure))?;
                    return wire::reply_body(procedure, &header, body).map(<[u8]>::to_vec);
                }
            }
        }
    }

    fn send(&mut self, msg: &[u8], procedure: Procedure, deadline: Deadline) -> Result<()> {
        let mut sent = 0;
        while sent < msg.len() {
            let left = deadline.left(procedure)?;
            self.stream
                .set_write_timeout(Some(left))
                .map_err(transport("sending", procedure))?;
            match self.stream.write(&msg[sent..]) {
                Ok(0) => return Err(closed(procedure)),
                Ok(n) => sent += n,
                Err(e) if retry(&e) => continue,
                Err(e) if hung_up(&e) => return Err(closed(procedure)),
                Err(e) => return Err(transport("sending", procedure)(e)),
            }
        }
        Ok(())
    }

    /// One message, after its length word; its length is checked before anything
    /// is allocated for it.
    fn receive(&mut self, procedure: Procedure, deadline: Deadline) -> Result<Vec<u8>> {
        let mut word = [0u8; LEN_WORD];
        self.read_exact(&mut word, procedure, deadline)?;
        let len = wire::check_length(word).map_err(protocol(procedure))?;
        let mut message = vec![0u8; len - LEN_WORD];
        self.read_exact(&mut message, procedure, deadline)?;
        Ok(message)
    }

    /// Fills `buf` by the deadline: each read waits at most for the time left, so
    /// an answer that trickles in byte by byte still ends the call at its deadline.
    fn read_exact(
        &mut self,
        buf: &mut [u8],
        procedure: Procedure,
        deadline: Deadline,
    ) -> Result<()> {
        let doing = "receiving the answer to";
        let mut filled = 0;
        while filled < buf.len() {
            let left = deadline.left(procedure)?;
            self.stream
                .set_read_timeout(Some(left))
                .map_err(transport(doing, procedure))?;
            match self.stream.read(&mut buf[filled..]) {
                Ok(0) => return Err(closed(procedure)),
                Ok(n) => filled += n,
                Err(e) if retry(&e) => continue,
                Err(e) if hung_up(&e) => return Err(closed(procedure)),
                Err(e) => return Err(transport(doing, procedure)(e)),
            }
        }
        Ok(())
    }

    /// Between calls: the socket must have nothing to read and not be at its end.
    fn peek_idle(&mut self) -> Result<()> {
        let between = "the connection between calls";
        let failed = |e| Error::Transport {
            doing: "checking",
            procedure: between,
            source: e,
        };
        self.stream.set_nonblocking(true).map_err(failed)?;
        let mut byte = [0u8; 1];
        let read = self.stream.read(&mut byte);
        self.stream.set_nonblocking(false).map_err(failed)?;
        match read {
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
            Ok(0) => Err(Error::Closed { procedure: between }),
            Err(e) if hung_up(&e) => Err(Error::Closed { procedure: between }),
            Ok(len) => Err(Error::Protocol {
                procedure: between,
                problem: crate::ProtocolError::Unsolicited { len },
            }),
            Err(e) => Err(failed(e)),
        }
    }
}

/// A read or write that timed out or was interrupted: try again while time is left.
fn retry(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

/// The daemon went away mid-way.
fn hung_up(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
    )
}

fn closed(procedure: Procedure) -> Error {
    Error::Closed {
        procedure: procedure.api_name(),
    }
}

fn transport(doing: &'static str, procedure: Procedure) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Transport {
        doing,
        procedure: procedure.api_name(),
        source,
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
