//! The helper's framing: a 4-byte big-endian length, then that many bytes of JSON.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The largest request the helper reads: a request carries a user name and a
/// password, or a change's names; nothing legitimate comes near it, and the
/// helper's memory for hundreds of connections stays small.
pub const MAX_FRAME: usize = 64 * 1024;

/// The largest answer a client reads: the layer store's facts of a node with
/// many layers and a long trial history fit many times over. Only the helper
/// writes answers.
pub const MAX_REPLY_FRAME: usize = 1024 * 1024;

/// A message that travels in frames, and the largest frame of it a side accepts.
pub trait Message: Serialize + DeserializeOwned {
    /// Frames announcing more bytes are refused unread.
    const MAX: usize;
}

impl Message for crate::proto::Request {
    const MAX: usize = MAX_FRAME;
}

impl Message for crate::proto::Reply {
    const MAX: usize = MAX_REPLY_FRAME;
}

/// A frame that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The other side closed the connection between frames.
    #[error("the connection was closed")]
    Closed,
    /// The connection failed or timed out (also: closed in the middle of a frame).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A frame announced more bytes than its kind of message may have
    /// ([`MAX_FRAME`] for a request, [`MAX_REPLY_FRAME`] for an answer).
    #[error("a frame of {0} bytes announced; at most {1} are accepted")]
    TooLarge(usize, usize),
    /// The frame's bytes are not the JSON of a message this side knows.
    #[error("a frame that is not a message this side knows: {0}")]
    Malformed(serde_json::Error),
}

/// Reads one frame and decodes it.
pub fn read<T: Message>(r: &mut impl Read) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    // A clean end of the connection is one before the first byte of a frame.
    match r.read(&mut len[..1])? {
        0 => return Err(FrameError::Closed),
        _ => r.read_exact(&mut len[1..])?,
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > T::MAX {
        return Err(FrameError::TooLarge(len, T::MAX));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    serde_json::from_slice(&body).map_err(FrameError::Malformed)
}

/// Encodes `message` and writes it as one frame.
pub fn write<T: Message>(w: &mut impl Write, message: &T) -> Result<(), FrameError> {
    w.write_all(&encode(message)?)?;
    w.flush()?;
    Ok(())
}

fn encode<T: Message>(message: &T) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(message).map_err(FrameError::Malformed)?;
    if body.len() > T::MAX {
        return Err(FrameError::TooLarge(body.len(), T::MAX));
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes `message` as one frame and passes `fd` with its first bytes
/// (`SCM_RIGHTS`): the receiver gets its own descriptor of the same open file.
pub fn write_with_fd<T: Message>(
    stream: &UnixStream,
    message: &T,
    fd: BorrowedFd<'_>,
) -> Result<(), FrameError> {
    let out = encode(message)?;
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(FrameError::Io(io::Error::other(
            "no room for a descriptor in the message's control data",
        )));
    }
    let sent = sendmsg(
        stream,
        &[IoSlice::new(&out)],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(io::Error::from)?;
    // What did not fit in one message follows without the descriptor.
    let mut rest = stream;
    rest.write_all(&out[sent..])?;
    Ok(())
}

/// Reads one frame and the descriptor passed with it, if any (more than one are
/// closed: a frame carries at most one).
pub fn read_with_fd<T: Message>(stream: &UnixStream) -> Result<(T, Option<OwnedFd>), FrameError> {
    let mut len = [0u8; 4];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut len)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    if got.bytes == 0 {
        return Err(FrameError::Closed);
    }
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for f in fds {
                fd.get_or_insert(f);
            }
        }
    }
    let mut rest = stream;
    rest.read_exact(&mut len[got.bytes..])?;
    let len = u32::from_be_bytes(len) as usize;
    if len > T::MAX {
        return Err(FrameError::TooLarge(len, T::MAX));
    }
    let mut body = vec![0u8; len];
    rest.read_exact(&mut body)?;
    let message = serde_json::from_slice(&body).map_err(FrameError::Malformed)?;
    Ok((message, fd))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::proto::{Reply, Request};

    #[test]
    fn a_frame_reads_back_as_written() {
        let mut buf = Vec::new();
        let req = Request::MayAdminister {
            user: "admin".into(),
        };
        write(&mut buf, &req).unwrap();
        assert_eq!(&buf[..4], &((buf.len() - 4) as u32).to_be_bytes());
        let back: Request = read(&mut buf.as_slice()).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn an_empty_stream_is_closed_and_a_cut_frame_is_an_error() {
        assert!(matches!(
            read::<Request>(&mut [].as_slice()),
            Err(FrameError::Closed)
        ));
        let mut buf = Vec::new();
        write(
            &mut buf,
            &Request::MayAdminister {
                user: "admin".into(),
            },
        )
        .unwrap();
        for cut in [2, 4, buf.len() - 1] {
            let e = read::<Request>(&mut &buf[..cut]).unwrap_err();
            assert!(matches!(e, FrameError::Io(_)), "cut at {cut}: {e}");
        }
    }

    #[test]
    fn a_descriptor_travels_with_its_frame() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let mut f = &file;
        f.write_all(b"shared").unwrap();
        let req = Request::MayAdminister {
            user: "admin".into(),
        };
        write_with_fd(&a, &req, std::os::fd::AsFd::as_fd(&file)).unwrap();
        write(&mut &a, &req).unwrap();
        let (back, fd) = read_with_fd::<Request>(&b).unwrap();
        assert_eq!(back, req);
        let mut got = std::fs::File::from(fd.unwrap());
        use std::io::Seek;
        got.seek(io::SeekFrom::Start(0)).unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "shared");
        // A frame without one reads as such.
        let (again, none) = read_with_fd::<Request>(&b).unwrap();
        assert_eq!(again, req);
        assert!(none.is_none());
        drop(a);
        assert!(matches!(
            read_with_fd::<Request>(&b),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn oversized_and_malformed_frames_are_refused_before_and_after_reading() {
        let big = ((MAX_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            read::<Request>(&mut big.as_slice()),
            Err(FrameError::TooLarge(n, MAX_FRAME)) if n == MAX_FRAME + 1
        ));
        // An answer may be larger than a request (the layer facts), up to its own
        // limit.
        assert!(matches!(
            read::<Reply>(&mut big.as_slice()),
            Err(FrameError::Io(_))
        ));
        let bigger = ((MAX_REPLY_FRAME + 1) as u32).to_be_bytes();
        assert!(matches!(
            read::<Reply>(&mut bigger.as_slice()),
            Err(FrameError::TooLarge(n, MAX_REPLY_FRAME)) if n == MAX_REPLY_FRAME + 1
        ));
        let long = Reply::Error {
            message: "x".repeat(MAX_FRAME * 2),
        };
        let mut buf = Vec::new();
        write(&mut buf, &long).unwrap();
        assert_eq!(read::<Reply>(&mut buf.as_slice()).unwrap(), long);
        assert!(matches!(
            read::<Request>(&mut buf.as_slice()),
            Err(FrameError::TooLarge(..))
        ));
        let mut junk = 5u32.to_be_bytes().to_vec();
        junk.extend_from_slice(b"hello");
        assert!(matches!(
            read::<Request>(&mut junk.as_slice()),
            Err(FrameError::Malformed(_))
        ));
        let body =
            serde_json::to_vec(&serde_json::json!({"request": "run", "argv": ["sh"]})).unwrap();
        let mut unknown = (body.len() as u32).to_be_bytes().to_vec();
        unknown.extend_from_slice(&body);
        assert!(matches!(
            read::<Request>(&mut unknown.as_slice()),
            Err(FrameError::Malformed(_))
        ));
    }
}
