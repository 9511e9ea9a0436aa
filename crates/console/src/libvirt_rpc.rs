//! A small client for libvirt's RPC protocol (program `0x20008086`, version 1, XDR over
//! libvirtd's UNIX socket), for the dozen calls the console makes.
//!
//! Speaking the protocol directly keeps `libvirt.so` and the fifty-odd libraries it
//! pulls in (OpenSSL, GnuTLS, GLib, ICU, libxml2, libssh, curl, …) out of the agent's
//! address space: that is most of its memory. Only local URIs are served
//! (`qemu:///system`, `test:///…`, optionally `driver+unix://` and `?socket=PATH`); the
//! daemon runs the driver, the test driver included.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PROGRAM: u32 = 0x2000_8086;
const VERSION: u32 = 1;
/// Largest message libvirtd sends (its own limit is 32 MiB).
const MESSAGE_MAX: usize = 32 * 1024 * 1024;

/// Procedure numbers of `remote_protocol.x`.
mod proc_ {
    pub const OPEN: i32 = 1;
    pub const CLOSE: i32 = 2;
    pub const GET_CAPABILITIES: i32 = 7;
    pub const DOMAIN_CREATE: i32 = 9;
    pub const DOMAIN_DESTROY: i32 = 12;
    pub const DOMAIN_GET_XML_DESC: i32 = 14;
    pub const DOMAIN_GET_AUTOSTART: i32 = 15;
    pub const DOMAIN_GET_INFO: i32 = 16;
    pub const DOMAIN_LOOKUP_BY_NAME: i32 = 23;
    pub const DOMAIN_REBOOT: i32 = 27;
    pub const DOMAIN_SHUTDOWN: i32 = 33;
    pub const AUTH_LIST: i32 = 66;
    pub const AUTH_POLKIT: i32 = 70;
    pub const DOMAIN_IS_PERSISTENT: i32 = 151;
    pub const CONNECT_LIST_ALL_DOMAINS: i32 = 273;
}

/// libvirt error numbers (`virterror.h`) the console tells apart.
pub mod code {
    pub const NO_CONNECT: i32 = 5;
    pub const INVALID_CONN: i32 = 6;
    pub const SYSTEM_ERROR: i32 = 38;
    pub const RPC: i32 = 39;
    pub const NO_DOMAIN: i32 = 42;
    pub const AUTH_FAILED: i32 = 45;
}

/// A failure: libvirt's own error (its number and message), or a transport failure,
/// reported as libvirt's client library would (`SYSTEM_ERROR`, `RPC`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    pub code: i32,
    pub message: String,
}

impl RpcError {
    fn system(what: &str, e: &std::io::Error) -> Self {
        Self {
            code: code::SYSTEM_ERROR,
            message: format!("{what}: {e}"),
        }
    }

    fn rpc(message: impl Into<String>) -> Self {
        Self {
            code: code::RPC,
            message: message.into(),
        }
    }

    /// Whether the connection is unusable after this error.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.code,
            code::SYSTEM_ERROR | code::RPC | code::NO_CONNECT | code::INVALID_CONN
        ) || self.code == code::AUTH_FAILED
    }
}

type Result<T> = std::result::Result<T, RpcError>;

/// XDR encoding (RFC 4506) of what the calls send.
#[derive(Debug, Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn string(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s.as_bytes());
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
    fn domain(&mut self, d: &DomainRef) -> &mut Self {
        self.string(&d.name);
        self.0.extend_from_slice(&d.uuid);
        self.i32(d.id)
    }
}

/// XDR decoding of what libvirtd answers; running out of bytes is a protocol error.
#[derive(Debug)]
struct Dec<'a>(&'a [u8]);

impl Dec<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.0.len() < n {
            return Err(RpcError::rpc("libvirtd sent a truncated answer"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn string(&mut self) -> Result<String> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?.to_vec();
        self.take(len.next_multiple_of(4) - len)?;
        String::from_utf8(bytes)
            .map_err(|_| RpcError::rpc("libvirtd sent a string that is not UTF-8"))
    }
    fn optional<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<Option<T>> {
        match self.u32()? {
            0 => Ok(None),
            _ => f(self).map(Some),
        }
    }
    fn uuid(&mut self) -> Result<[u8; 16]> {
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(self.take(16)?);
        Ok(uuid)
    }
    fn domain(&mut self) -> Result<DomainRef> {
        Ok(DomainRef {
            name: self.string()?,
            uuid: self.uuid()?,
            id: self.i32()?,
        })
    }
    /// `remote_error`: code, domain, message, level, dom, str1-3, int1-2, net.
    fn error(&mut self) -> Result<RpcError> {
        let code = self.i32()?;
        let _domain = self.i32()?;
        let message = self.optional(Self::string)?;
        Ok(RpcError {
            code,
            message: message.unwrap_or_else(|| format!("libvirt error {code}")),
        })
    }
}

/// A domain as the protocol names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRef {
    pub name: String,
    pub uuid: [u8; 16],
    pub id: i32,
}

impl DomainRef {
    /// The UUID in its usual text form.
    pub fn uuid_string(&self) -> String {
        let h: Vec<String> = self.uuid.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            h[0..4].concat(),
            h[4..6].concat(),
            h[6..8].concat(),
            h[8..10].concat(),
            h[10..16].concat()
        )
    }
}

/// `virDomainInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainInfo {
    /// `virDomainState`: 1 running, 5 shut off, …
    pub state: u32,
    pub max_mem: u64,
    pub memory: u64,
    pub nr_virt_cpu: u32,
    pub cpu_time: u64,
}

/// The local socket and the name to open for `uri`.
pub fn target(uri: &str) -> Result<(PathBuf, String)> {
    let bad = |why: &str| RpcError {
        code: code::NO_CONNECT,
        message: format!("cannot use libvirt URI {uri:?}: {why}"),
    };
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let (driver, transport) = scheme.split_once('+').unwrap_or((scheme, ""));
    if !transport.is_empty() && transport != "unix" {
        return Err(bad("only local connections (unix) are supported"));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !rest.starts_with('/') {
        return Err(bad("only local connections (no host name) are supported"));
    }
    let socket = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("socket="))
        .map(PathBuf::from)
        .unwrap_or_else(|| default_socket(driver));
    Ok((socket, format!("{driver}://{rest}")))
}

/// libvirtd's socket, or the modular daemon's for `driver` where libvirtd is not used.
fn default_socket(driver: &str) -> PathBuf {
    let monolithic = PathBuf::from("/run/libvirt/libvirt-sock");
    let modular = PathBuf::from(format!("/run/libvirt/virt{driver}d-sock"));
    if !monolithic.exists() && modular.exists() {
        modular
    } else {
        monolithic
    }
}

/// One connection to the daemon.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    serial: u32,
}

impl Client {
    /// Connects to the daemon serving `uri`, authenticates (none or polkit) and opens
    /// the connection; every answer must come within `timeout`.
    pub fn open(uri: &str, timeout: Duration) -> Result<Self> {
        let (socket, name) = target(uri)?;
        let stream = connect(&socket)?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .map_err(|e| RpcError::system("setting socket timeouts", &e))?;
        let mut client = Self { stream, serial: 0 };
        let answer = client.call(proc_::AUTH_LIST, &[])?;
        let mut d = Dec(&answer);
        let types = (0..d.u32()?.min(20))
            .map(|_| d.u32())
            .collect::<Result<Vec<_>>>()?;
        if !types.is_empty() && !types.contains(&0) {
            if !types.contains(&2) {
                return Err(RpcError {
                    code: code::AUTH_FAILED,
                    message: format!(
                        "libvirtd at {} asks for SASL authentication, which the console does \
                         not speak; allow local root access (auth_unix_rw = \"none\" or \
                         \"polkit\")",
                        socket.display()
                    ),
                });
            }
            client.call(proc_::AUTH_POLKIT, &[])?;
        }
        let mut args = Enc::default();
        args.u32(1).string(&name).u32(0);
        client.call(proc_::OPEN, &args.0)?;
        Ok(client)
    }

    /// Whether the daemon is still there: nothing unasked for may be waiting, and the
    /// socket must not be at its end.
    pub fn is_alive(&mut self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let alive =
            matches!(self.stream.read(&mut byte), Err(e) if e.kind() == ErrorKind::WouldBlock);
        alive && self.stream.set_nonblocking(false).is_ok()
    }

    fn call(&mut self, procedure: i32, args: &[u8]) -> Result<Vec<u8>> {
        self.serial = self.serial.wrapping_add(1);
        let serial = self.serial;
        let mut msg = Enc::default();
        msg.u32(0)
            .u32(PROGRAM)
            .u32(VERSION)
            .i32(procedure)
            .u32(0) // call
            .u32(serial)
            .u32(0); // ok
        msg.0.extend_from_slice(args);
        let len = msg.0.len() as u32;
        msg.0[..4].copy_from_slice(&len.to_be_bytes());
        self.stream
            .write_all(&msg.0)
            .map_err(|e| RpcError::system("sending to libvirtd", &e))?;
        loop {
            let reply = self.receive()?;
            let mut d = Dec(&reply);
            let (prog, _vers, rproc, kind, rserial, status) =
                (d.u32()?, d.u32()?, d.i32()?, d.u32()?, d.u32()?, d.u32()?);
            // Replies only; anything else (events, keepalives) is not ours.
            if prog != PROGRAM || kind != 1 || rserial != serial || rproc != procedure {
                continue;
            }
            return match status {
                0 => Ok(d.0.to_vec()),
                1 => Err(d.error()?),
                other => Err(RpcError::rpc(format!(
                    "libvirtd answered with status {other}"
                ))),
            };
        }
    }

    fn receive(&mut self) -> Result<Vec<u8>> {
        let mut len = [0u8; 4];
        let read = |s: &mut UnixStream, buf: &mut [u8]| {
            s.read_exact(buf).map_err(|e| match e.kind() {
                ErrorKind::UnexpectedEof => RpcError::rpc("libvirtd closed the connection"),
                _ => RpcError::system("reading from libvirtd", &e),
            })
        };
        read(&mut self.stream, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if !(28..=MESSAGE_MAX).contains(&len) {
            return Err(RpcError::rpc(format!(
                "libvirtd sent a message of {len} bytes"
            )));
        }
        let mut body = vec![0u8; len - 4];
        read(&mut self.stream, &mut body)?;
        Ok(body)
    }

    fn domain_call(
        &mut self,
        procedure: i32,
        dom: &DomainRef,
        flags: Option<u32>,
    ) -> Result<Vec<u8>> {
        let mut args = Enc::default();
        args.domain(dom);
        if let Some(f) = flags {
            args.u32(f);
        }
        self.call(procedure, &args.0)
    }

    /// `virConnectGetCapabilities`.
    pub fn capabilities(&mut self) -> Result<String> {
        Dec(&self.call(proc_::GET_CAPABILITIES, &[])?).string()
    }

    /// `virConnectListAllDomains(0)`.
    pub fn list_all_domains(&mut self) -> Result<Vec<DomainRef>> {
        let mut args = Enc::default();
        args.i32(1).u32(0);
        let answer = self.call(proc_::CONNECT_LIST_ALL_DOMAINS, &args.0)?;
        let mut d = Dec(&answer);
        let n = d.u32()? as usize;
        (0..n.min(65536)).map(|_| d.domain()).collect()
    }

    /// `virDomainLookupByName`.
    pub fn lookup_by_name(&mut self, name: &str) -> Result<DomainRef> {
        let mut args = Enc::default();
        args.string(name);
        Dec(&self.call(proc_::DOMAIN_LOOKUP_BY_NAME, &args.0)?).domain()
    }

    /// `virDomainGetInfo`.
    pub fn info(&mut self, dom: &DomainRef) -> Result<DomainInfo> {
        let answer = self.domain_call(proc_::DOMAIN_GET_INFO, dom, None)?;
        let mut d = Dec(&answer);
        Ok(DomainInfo {
            state: d.u32()?,
            max_mem: d.u64()?,
            memory: d.u64()?,
            nr_virt_cpu: d.u32()?,
            cpu_time: d.u64()?,
        })
    }

    /// `virDomainGetXMLDesc(flags)`.
    pub fn xml_desc(&mut self, dom: &DomainRef, flags: u32) -> Result<String> {
        Dec(&self.domain_call(proc_::DOMAIN_GET_XML_DESC, dom, Some(flags))?).string()
    }

    /// `virDomainGetAutostart`.
    pub fn autostart(&mut self, dom: &DomainRef) -> Result<bool> {
        Ok(Dec(&self.domain_call(proc_::DOMAIN_GET_AUTOSTART, dom, None)?).i32()? != 0)
    }

    /// `virDomainIsPersistent`.
    pub fn is_persistent(&mut self, dom: &DomainRef) -> Result<bool> {
        Ok(Dec(&self.domain_call(proc_::DOMAIN_IS_PERSISTENT, dom, None)?).i32()? == 1)
    }

    /// `virDomainCreate`.
    pub fn create(&mut self, dom: &DomainRef) -> Result<()> {
        self.domain_call(proc_::DOMAIN_CREATE, dom, None).map(drop)
    }

    /// `virDomainShutdown`.
    pub fn shutdown(&mut self, dom: &DomainRef) -> Result<()> {
        self.domain_call(proc_::DOMAIN_SHUTDOWN, dom, None)
            .map(drop)
    }

    /// `virDomainDestroy`.
    pub fn destroy(&mut self, dom: &DomainRef) -> Result<()> {
        self.domain_call(proc_::DOMAIN_DESTROY, dom, None).map(drop)
    }

    /// `virDomainReboot(flags)`.
    pub fn reboot(&mut self, dom: &DomainRef, flags: u32) -> Result<()> {
        self.domain_call(proc_::DOMAIN_REBOOT, dom, Some(flags))
            .map(drop)
    }

    /// Closes the connection politely.
    pub fn close(mut self) {
        let _ = self.call(proc_::CLOSE, &[]);
    }
}

fn connect(socket: &Path) -> Result<UnixStream> {
    UnixStream::connect(socket).map_err(|e| RpcError {
        code: code::SYSTEM_ERROR,
        message: format!("cannot connect to libvirtd at {}: {e}", socket.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_become_a_socket_and_a_name() {
        let (socket, name) = target("qemu:///system").unwrap();
        assert!(socket.starts_with("/run/libvirt/"), "{}", socket.display());
        assert_eq!(name, "qemu:///system");
        let (socket, name) = target("test+unix:///tmp/node.xml?socket=/tmp/s").unwrap();
        assert_eq!(socket, PathBuf::from("/tmp/s"));
        assert_eq!(name, "test:///tmp/node.xml");
        assert_eq!(target("test:///default").unwrap().1, "test:///default");
        for uri in ["qemu+ssh://host/system", "qemu://host/system", "nonsense"] {
            assert_eq!(target(uri).unwrap_err().code, code::NO_CONNECT, "{uri}");
        }
    }

    #[test]
    fn xdr_strings_are_padded_and_round_trip() {
        let mut e = Enc::default();
        e.string("abcde").u32(7);
        assert_eq!(e.0.len(), 4 + 8 + 4);
        let mut d = Dec(&e.0);
        assert_eq!(d.string().unwrap(), "abcde");
        assert_eq!(d.u32().unwrap(), 7);
        assert!(d.u32().is_err(), "nothing left");
    }

    #[test]
    fn domains_and_errors_decode() {
        let dom = DomainRef {
            name: "vm1".into(),
            uuid: *b"\x6f\x5c\x1e\x2a\x00\x01\x40\x02\x80\x03\x00\x00\x00\x00\x00\x42",
            id: 3,
        };
        let mut e = Enc::default();
        e.domain(&dom);
        assert_eq!(Dec(&e.0).domain().unwrap(), dom);
        assert_eq!(dom.uuid_string(), "6f5c1e2a-0001-4002-8003-000000000042");
        let mut e = Enc::default();
        e.i32(code::NO_DOMAIN)
            .i32(10)
            .u32(1)
            .string("Domain not found");
        e.i32(2).u32(0).u32(0).u32(0).u32(0).i32(0).i32(0).u32(0);
        let err = Dec(&e.0).error().unwrap();
        assert_eq!(err.code, code::NO_DOMAIN);
        assert_eq!(err.message, "Domain not found");
        assert!(!err.is_connection_error());
    }

    /// A daemon that answers each call with `answer(procedure)` (status and payload),
    /// then hangs up after `calls` calls.
    fn fake_daemon(
        calls: usize,
        answer: impl Fn(i32) -> (u32, Vec<u8>) + Send + 'static,
    ) -> (tempfile::TempDir, std::thread::JoinHandle<()>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        let thread = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            for _ in 0..calls {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize - 4];
                s.read_exact(&mut body).unwrap();
                let mut d = Dec(&body);
                let (prog, vers, procedure) =
                    (d.u32().unwrap(), d.u32().unwrap(), d.i32().unwrap());
                let (_call, serial) = (d.u32().unwrap(), d.u32().unwrap());
                assert_eq!((prog, vers), (PROGRAM, VERSION));
                let (status, payload) = answer(procedure);
                let mut reply = Enc::default();
                reply.u32(0).u32(PROGRAM).u32(VERSION).i32(procedure);
                reply.u32(1).u32(serial).u32(status);
                reply.0.extend_from_slice(&payload);
                let n = reply.0.len() as u32;
                reply.0[..4].copy_from_slice(&n.to_be_bytes());
                s.write_all(&reply.0).unwrap();
            }
        });
        (dir, thread)
    }

    #[test]
    fn a_session_with_a_daemon_and_its_end() {
        let (dir, daemon) = fake_daemon(4, |procedure| match procedure {
            proc_::AUTH_LIST => (0, Enc::default().u32(1).u32(0).0.clone()),
            proc_::OPEN => (0, Vec::new()),
            proc_::GET_CAPABILITIES => (0, Enc::default().string("<capabilities/>").0.clone()),
            _ => {
                let mut e = Enc::default();
                e.i32(code::NO_DOMAIN)
                    .i32(10)
                    .u32(1)
                    .string("Domain not found: no domain with matching name 'x'");
                e.i32(2).u32(0).u32(0).u32(0).u32(0).i32(0).i32(0).u32(0);
                (1, e.0)
            }
        });
        let uri = format!(
            "test:///default?socket={}",
            dir.path().join("sock").display()
        );
        let mut client = Client::open(&uri, Duration::from_secs(5)).unwrap();
        assert!(client.is_alive());
        assert_eq!(client.capabilities().unwrap(), "<capabilities/>");
        let err = client.lookup_by_name("x").unwrap_err();
        assert_eq!(err.code, code::NO_DOMAIN);
        assert!(err.message.starts_with("Domain not found"), "{err}");
        daemon.join().unwrap();
        // The daemon went away: the client notices before the next call.
        assert!(!client.is_alive());
        assert!(client.capabilities().unwrap_err().is_connection_error());
    }

    #[test]
    fn a_missing_socket_is_a_system_error() {
        let e = Client::open(
            "test:///default?socket=/nonexistent/libvirt-sock",
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(e.code, code::SYSTEM_ERROR);
        assert!(e.message.contains("/nonexistent/libvirt-sock"), "{e}");
    }
}
