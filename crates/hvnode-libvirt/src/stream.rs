//! A domain's console as libvirt's stream (`virDomainOpenConsole`): after the call's
//! reply, the connection carries the console's bytes both ways as stream messages
//! (`VIR_NET_STREAM`, status `VIR_NET_CONTINUE`, the call's serial and procedure,
//! the bytes raw after the header); `VIR_NET_OK` ends it, `VIR_NET_ERROR` carries
//! libvirt's error. The stream takes the connection over: it carries nothing else.
//! libvirt keeps one console session per console, so `virsh console` and this do
//! not both read the guest's output.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use crate::client::{Client, check_arg};
use crate::error::{Error, ProtocolError};
use crate::types::Domain;
use crate::wire::{
    self, Header, LEN_WORD, PROGRAM, PROTOCOL_VERSION, Procedure, STATUS_CONTINUE, STATUS_ERROR,
    STATUS_OK, TYPE_MESSAGE, TYPE_REPLY, TYPE_STREAM,
};
use crate::xdr::{Dec, Enc};

type Result<T> = std::result::Result<T, Error>;

/// `VIR_DOMAIN_CONSOLE_FORCE`: end another session of the console (a `virsh
/// console` left open) instead of failing.
pub const CONSOLE_FORCE: u32 = 1;

/// The most bytes one stream message carries (`VIR_NET_MESSAGE_LEGACY_PAYLOAD_MAX`).
pub const STREAM_CHUNK: usize = 262_120;

const PROC: Procedure = Procedure::DomainOpenConsole;

/// What [`ConsoleStream::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    Data(Vec<u8>),
    /// libvirt ended the stream (the domain stopped, or another session took it).
    End,
}

/// The console's stream: one half reads, a clone of it writes.
#[derive(Debug)]
pub struct ConsoleStream {
    socket: UnixStream,
    serial: u32,
    /// Data that came before the call's reply.
    early: Vec<Vec<u8>>,
}

impl Client {
    /// Opens the domain's console (`dev`: its alias, or the first console) as a
    /// stream, which takes this connection over.
    pub fn open_console(
        self,
        dom: &Domain,
        dev: Option<&str>,
        flags: u32,
    ) -> Result<ConsoleStream> {
        check_arg("a domain name", &dom.name)?;
        if let Some(d) = dev {
            check_arg("a console name", d)?;
        }
        let (mut socket, serial) = self.into_parts()?;
        let mut args = Enc::default();
        args.domain(dom).optional_string(dev).u32(flags);
        let transport = |doing| {
            move |source| Error::Transport {
                doing,
                procedure: PROC.api_name(),
                source,
            }
        };
        socket
            .set_write_timeout(None)
            .and_then(|()| socket.set_read_timeout(None))
            .map_err(transport("preparing"))?;
        socket
            .write_all(&wire::encode_call(PROC, serial, &args.0))
            .map_err(transport("sending"))?;
        let mut early = Vec::new();
        loop {
            let (header, body) = receive(&mut socket)?;
            if header.kind == TYPE_MESSAGE {
                continue;
            }
            check(&header, serial)?;
            match (header.kind, header.status) {
                (TYPE_REPLY, STATUS_OK) => break,
                (TYPE_REPLY, _) => {
                    let remote = wire::decode_remote_error(PROC, &body).map_err(protocol)?;
                    return Err(Error::Remote(remote));
                }
                (TYPE_STREAM, STATUS_CONTINUE) => early.push(body),
                (TYPE_STREAM, _) => break,
                (found, _) => return Err(protocol(ProtocolError::UnexpectedType { found })),
            }
        }
        Ok(ConsoleStream {
            socket,
            serial,
            early,
        })
    }
}

fn protocol(problem: ProtocolError) -> Error {
    Error::Protocol {
        procedure: PROC.api_name(),
        problem,
    }
}

/// One whole message: its header and body.
fn receive(socket: &mut UnixStream) -> Result<(Header, Vec<u8>)> {
    let closed = || Error::Closed {
        procedure: PROC.api_name(),
    };
    let mut word = [0u8; LEN_WORD];
    socket.read_exact(&mut word).map_err(|_| closed())?;
    let len = wire::check_length(word).map_err(protocol)?;
    let mut message = vec![0u8; len - LEN_WORD];
    socket.read_exact(&mut message).map_err(|_| closed())?;
    let mut d = Dec::new(&message);
    let header = Header::decode(&mut d).map_err(protocol)?;
    Ok((header, d.rest().to_vec()))
}

/// The message belongs to the console's call and to libvirt's program.
fn check(header: &Header, serial: u32) -> Result<()> {
    if header.program != PROGRAM {
        return Err(protocol(ProtocolError::WrongProgram {
            found: header.program,
            expected: PROGRAM,
        }));
    }
    if header.serial != serial || header.procedure != PROC.number() {
        return Err(protocol(ProtocolError::WrongSerial {
            expected: serial,
            found: header.serial,
        }));
    }
    Ok(())
}

/// A stream message of the console's call.
fn encode(serial: u32, status: u32, payload: &[u8]) -> Vec<u8> {
    let mut msg = Enc::default();
    msg.u32(0)
        .u32(PROGRAM)
        .u32(PROTOCOL_VERSION)
        .i32(PROC.number())
        .u32(TYPE_STREAM)
        .u32(serial)
        .u32(status);
    msg.0.extend_from_slice(payload);
    let len = msg.0.len() as u32;
    msg.0[..LEN_WORD].copy_from_slice(&len.to_be_bytes());
    msg.0
}

impl ConsoleStream {
    /// A second handle on the same stream, for a thread that writes while this one
    /// reads.
    pub fn try_clone(&self) -> Result<Self> {
        Ok(Self {
            socket: self.socket.try_clone().map_err(|source| Error::Transport {
                doing: "sharing",
                procedure: PROC.api_name(),
                source,
            })?,
            serial: self.serial,
            early: Vec::new(),
        })
    }

    /// The console's next bytes, waiting for them; [`Chunk::End`] once libvirt
    /// ended the stream.
    pub fn read(&mut self) -> Result<Chunk> {
        if !self.early.is_empty() {
            return Ok(Chunk::Data(self.early.remove(0)));
        }
        loop {
            let (header, body) = receive(&mut self.socket)?;
            if header.kind == TYPE_MESSAGE {
                continue;
            }
            check(&header, self.serial)?;
            return match (header.kind, header.status) {
                (TYPE_STREAM, STATUS_CONTINUE) if body.is_empty() => continue,
                (TYPE_STREAM, STATUS_CONTINUE) => Ok(Chunk::Data(body)),
                (TYPE_STREAM | TYPE_REPLY, STATUS_OK) => Ok(Chunk::End),
                (TYPE_STREAM | TYPE_REPLY, STATUS_ERROR) => {
                    let remote = wire::decode_remote_error(PROC, &body).map_err(protocol)?;
                    Err(Error::Remote(remote))
                }
                (found, _) => Err(protocol(ProtocolError::UnexpectedType { found })),
            };
        }
    }

    /// Sends `data` to the console (the guest's input), in chunks of at most
    /// [`STREAM_CHUNK`] bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(STREAM_CHUNK) {
            self.socket
                .write_all(&encode(self.serial, STATUS_CONTINUE, chunk))
                .map_err(|source| Error::Transport {
                    doing: "sending",
                    procedure: PROC.api_name(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Ends the stream (libvirt answers and closes its side), then the connection.
    pub fn finish(mut self) {
        let _ = self.socket.write_all(&encode(self.serial, STATUS_OK, &[]));
        let _ = self.socket.shutdown(std::net::Shutdown::Write);
    }
}
