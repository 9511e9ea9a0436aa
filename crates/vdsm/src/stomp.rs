//! STOMP 1.2 frames as vdsm and oVirt Engine's Java client exchange them.
//!
//! A frame is a command line, header lines `name:value`, an empty line, the body and a
//! NUL byte. The engine's parser splits on `\n` only, does no header un-escaping and
//! reads a MESSAGE's body by its exact `content-length`, so frames written here use LF
//! line ends, never escape a header, and always carry `content-length` when they have
//! a body. Frames read here accept `\r\n` line ends (STOMP 1.2 allows them) and a body
//! without `content-length` (up to the NUL).
//!
//! Between frames a peer may send heart-beats: bare end-of-line bytes, skipped.
//! [`Decoder`] reads frames from a byte stream incrementally, within [`Limits`]: a
//! frame too large, or bytes that are not a frame, are an error and the connection is
//! to be closed; a half frame waits for its remaining bytes.

use std::fmt;

/// How large a frame may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The command line and headers together.
    pub max_head: usize,
    /// The body.
    pub max_body: usize,
    /// The number of headers.
    pub max_headers: usize,
}

impl Default for Limits {
    /// The engine's own parser holds headers in 1,024 bytes; requests carry JSON-RPC
    /// (the largest the engine sends, `VM.create` with a domain's XML, stays well
    /// under a mebibyte).
    fn default() -> Self {
        Self {
            max_head: 8 * 1024,
            max_body: 4 * 1024 * 1024,
            max_headers: 64,
        }
    }
}

/// A STOMP frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: String,
    /// Headers in order; a repeated name's first value counts (STOMP 1.2).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Frame {
    pub fn new(command: &str) -> Self {
        Self {
            command: command.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The first value of header `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The frame's bytes: LF line ends, `content-length` for a body (added when not
    /// given), a NUL at the end. Header names and values must not hold `\n`, `:` (in
    /// names) or NUL: [`Frame::encode`] replaces such bytes with spaces rather than
    /// escape them, since the engine does not un-escape.
    pub fn encode(&self) -> Vec<u8> {
        let clean = |s: &str, colon: bool| -> String {
            s.chars()
                .map(|c| match c {
                    '\n' | '\r' | '\0' => ' ',
                    ':' if colon => ' ',
                    c => c,
                })
                .collect()
        };
        let mut out = Vec::with_capacity(self.body.len() + 128);
        out.extend_from_slice(clean(&self.command, true).as_bytes());
        out.push(b'\n');
        let mut has_length = false;
        for (name, value) in &self.headers {
            if name == "content-length" {
                has_length = true;
                // Always the body's own length.
                out.extend_from_slice(format!("content-length:{}\n", self.body.len()).as_bytes());
                continue;
            }
            out.extend_from_slice(clean(name, true).as_bytes());
            out.push(b':');
            out.extend_from_slice(clean(value, false).as_bytes());
            out.push(b'\n');
        }
        if !has_length && !self.body.is_empty() {
            out.extend_from_slice(format!("content-length:{}\n", self.body.len()).as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out.push(0);
        out
    }
}

/// Why bytes are not a frame; the connection is closed after any of them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame's command and headers are longer than {0} bytes")]
    HeadTooLarge(usize),
    #[error("a frame's body of {0} bytes is longer than {1} bytes")]
    BodyTooLarge(usize, usize),
    #[error("a frame has more than {0} headers")]
    TooManyHeaders(usize),
    #[error("not a STOMP frame: {0}")]
    Malformed(String),
}

/// Reads frames from a byte stream as its bytes arrive.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    limits: Limits,
}

impl Decoder {
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: Vec::new(),
            limits,
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The bytes held for a frame not yet whole.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `None` while its bytes have not all arrived, or why the
    /// bytes are not a frame. Heart-beats (end-of-line bytes between frames) are
    /// skipped.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\n' || **b == b'\r')
            .count();
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some(head_end) = find_head_end(&self.buf) else {
            if self.buf.len() > self.limits.max_head {
                return Err(FrameError::HeadTooLarge(self.limits.max_head));
            }
            if self.buf.contains(&0) {
                return Err(FrameError::Malformed(
                    "a NUL byte before the end of the headers".into(),
                ));
            }
            return Ok(None);
        };
        let (head_len, body_start) = head_end;
        if head_len > self.limits.max_head {
            return Err(FrameError::HeadTooLarge(self.limits.max_head));
        }
        let head = std::str::from_utf8(&self.buf[..head_len])
            .map_err(|_| FrameError::Malformed("headers are not UTF-8".into()))?;
        let (command, headers) = parse_head(head, &self.limits)?;
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| {
                v.trim().parse::<usize>().map_err(|_| {
                    FrameError::Malformed(format!("content-length {v:?} is not a number"))
                })
            })
            .transpose()?;
        let body_end = match length {
            Some(n) => {
                if n > self.limits.max_body {
                    return Err(FrameError::BodyTooLarge(n, self.limits.max_body));
                }
                if self.buf.len() < body_start + n + 1 {
                    return Ok(None);
                }
                if self.buf[body_start + n] != 0 {
                    return Err(FrameError::Malformed(
                        "the byte after content-length bytes of body is not NUL".into(),
                    ));
                }
                body_start + n
            }
            None => match self.buf[body_start..].iter().position(|b| *b == 0) {
                Some(i) if i > self.limits.max_body => {
                    return Err(FrameError::BodyTooLarge(i, self.limits.max_body));
                }
                Some(i) => body_start + i,
                None if self.buf.len() - body_start > self.limits.max_body => {
                    return Err(FrameError::BodyTooLarge(
                        self.buf.len() - body_start,
                        self.limits.max_body,
                    ));
                }
                None => return Ok(None),
            },
        };
        let body = self.buf[body_start..body_end].to_vec();
        self.buf.drain(..=body_end);
        Ok(Some(Frame {
            command,
            headers,
            body,
        }))
    }
}

/// Where the headers end: their length (without the blank line) and where the body
/// starts.
fn find_head_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|b| *b == b'\n') {
        let nl = i + p;
        // A blank line: "\n\n" or "\n\r\n".
        if buf.get(nl + 1) == Some(&b'\n') {
            return Some((nl, nl + 2));
        }
        if buf.get(nl + 1) == Some(&b'\r') && buf.get(nl + 2) == Some(&b'\n') {
            return Some((nl, nl + 3));
        }
        i = nl + 1;
    }
    None
}

fn parse_head(head: &str, limits: &Limits) -> Result<(String, Vec<(String, String)>), FrameError> {
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let command = lines.next().unwrap_or_default();
    if command.is_empty() || !command.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(FrameError::Malformed(format!(
            "{:?} is not a command",
            command.chars().take(40).collect::<String>()
        )));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| {
            FrameError::Malformed(format!(
                "header line {:?} has no ':'",
                line.chars().take(40).collect::<String>()
            ))
        })?;
        if headers.len() == limits.max_headers {
            return Err(FrameError::TooManyHeaders(limits.max_headers));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    Ok((command.to_string(), headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> Result<Option<Frame>, FrameError> {
        let mut d = Decoder::default();
        d.push(bytes);
        d.next_frame()
    }

    #[test]
    fn the_engines_frames_are_read() {
        let connect = b"CONNECT\naccept-version:1.2\nhost:engine\nheart-beat:0,15000\n\n\0";
        let f = one(connect).unwrap().unwrap();
        assert_eq!(f.command, "CONNECT");
        assert_eq!(f.get("heart-beat"), Some("0,15000"));
        let json = br#"{"jsonrpc":"2.0","method":"Host.ping2","params":{},"id":"1"}"#;
        let mut send = format!(
            "SEND\ndestination:jms.topic.vdsm_requests\nreply-to:jms.topic.vdsm_responses\ncontent-length:{}\n\n",
            json.len()
        )
        .into_bytes();
        send.extend_from_slice(json);
        send.push(0);
        let f = one(&send).unwrap().unwrap();
        assert_eq!(f.body, json);
        assert_eq!(f.get("reply-to"), Some("jms.topic.vdsm_responses"));
    }

    #[test]
    fn frames_come_whole_byte_by_byte_with_heart_beats_between() {
        // As read back: encode added the body's length.
        let a = Frame::new("SEND")
            .header("destination", "d")
            .header("content-length", "8")
            .body(b"with\0nul".to_vec());
        let b = Frame::new("DISCONNECT").header("receipt", "7");
        let mut bytes = b"\n\r\n".to_vec();
        bytes.extend(a.encode());
        bytes.extend_from_slice(b"\n\n");
        bytes.extend(b.encode());
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for byte in bytes {
            d.push(&[byte]);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, [a, b]);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn crlf_line_ends_and_a_body_without_length_are_read() {
        let f = one(b"SEND\r\ndestination:x\r\n\r\nhello\0")
            .unwrap()
            .unwrap();
        assert_eq!(f.get("destination"), Some("x"));
        assert_eq!(f.body, b"hello");
    }

    #[test]
    fn written_frames_carry_their_exact_length_and_no_line_breaks_in_headers() {
        let f = Frame::new("MESSAGE")
            .header("destination", "a\nb")
            .header("content-length", "999")
            .body(b"{}".to_vec());
        let bytes = f.encode();
        assert_eq!(
            bytes,
            b"MESSAGE\ndestination:a b\ncontent-length:2\n\n{}\0".to_vec()
        );
        let plain = Frame::new("RECEIPT").header("receipt-id", "1").encode();
        assert_eq!(plain, b"RECEIPT\nreceipt-id:1\n\n\0".to_vec());
    }

    #[test]
    fn bad_bytes_are_errors_and_half_frames_wait() {
        assert_eq!(one(b"SEND\ndestination:x\n").unwrap(), None);
        assert_eq!(one(b"SEND\ncontent-length:5\n\nabc").unwrap(), None);
        for bad in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"send\n\n\0",
            b"SEND\nno colon here\n\n\0",
            b"SEND\ncontent-length:x\n\n\0",
            b"SEND\ncontent-length:2\n\nabc\0",
            b"SEND\0\n\n",
            b"\xff\xfe\n\n\0",
        ] {
            assert!(
                matches!(one(bad), Err(FrameError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn frames_past_the_limits_are_refused_before_they_are_read() {
        let limits = Limits {
            max_head: 64,
            max_body: 16,
            max_headers: 2,
        };
        let mut d = Decoder::new(limits);
        d.push(&[b'A'; 65]);
        assert_eq!(d.next_frame(), Err(FrameError::HeadTooLarge(64)));
        let mut d = Decoder::new(limits);
        d.push(b"SEND\ncontent-length:1000000\n\n");
        assert_eq!(d.next_frame(), Err(FrameError::BodyTooLarge(1_000_000, 16)));
        let mut d = Decoder::new(limits);
        d.push(b"SEND\n\n");
        d.push(&[b'x'; 17]);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::BodyTooLarge(17, 16))
        ));
        // A body without content-length, whole at once: still held to the limit
        // (found by fuzzing).
        let mut d = Decoder::new(limits);
        let mut whole = b"SEND\n\n".to_vec();
        whole.extend([b'x'; 40]);
        whole.push(0);
        d.push(&whole);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::BodyTooLarge(40, 16))
        ));
        let mut d = Decoder::new(limits);
        d.push(b"SEND\na:1\nb:2\nc:3\n\n\0");
        assert_eq!(d.next_frame(), Err(FrameError::TooManyHeaders(2)));
    }
}
