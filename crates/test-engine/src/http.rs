//! The engine's HTTPS server: one thread per connection, one request per connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls::{ServerConnection, StreamOwned};

use crate::{RecordedRequest, RegisteredHost, Shared, lock};

pub(crate) const REGISTER_PATH: &str = "/ovirt-engine/services/host-register";
const PKI_PATH: &str = "/ovirt-engine/services/pki-resource";
const MAX_HEAD: usize = 64 * 1024;

pub(crate) fn serve(listener: TcpListener, shared: Shared, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let drop_it = {
            let mut state = lock(&shared);
            if state.faults.drop_connections > 0 {
                state.faults.drop_connections -= 1;
                true
            } else {
                false
            }
        };
        if drop_it {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            continue;
        }
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &shared);
        });
    }
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn ok(content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status: 200,
            content_type,
            body: body.into(),
        }
    }
}

fn handle(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let tls = lock(shared).tls.clone();
    let conn = ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut tls = StreamOwned::new(conn, stream);

    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tls.read(&mut buf)?;
        if n == 0 || head.len() > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.lines().next().unwrap_or_default().split(' ');
    let method = words.next().unwrap_or_default().to_string();
    let target = words.next().unwrap_or_default();
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let request = RecordedRequest {
        method,
        path: path.to_string(),
        raw_query: raw_query.to_string(),
        params: parse_query(raw_query),
    };

    let delay = {
        let mut state = lock(shared);
        state.requests.push(request.clone());
        state.faults.delay
    };
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let response = route(&request, shared);

    let reason = match response.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    if request.method != "HEAD" {
        out.push_str(&response.body);
    }
    tls.write_all(out.as_bytes())?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

fn route(request: &RecordedRequest, shared: &Shared) -> Response {
    if request.path != REGISTER_PATH && request.path != PKI_PATH {
        return Response {
            status: 404,
            content_type: "text/plain",
            body: "Not Found".into(),
        };
    }
    if request.method != "GET" && request.method != "HEAD" {
        return Response {
            status: 405,
            content_type: "text/plain",
            body: "Method Not Allowed".into(),
        };
    }
    let result = if request.path == PKI_PATH {
        pki_resource(request, shared)
    } else {
        host_register(request, shared)
    };
    result.unwrap_or_else(|message| {
        let html = lock(shared).faults.html_errors;
        if html {
            Response {
                status: 400,
                content_type: "text/html;charset=UTF-8",
                body: format!(
                    "<html><head><title>Error</title></head><body>{message}</body></html>"
                ),
            }
        } else {
            Response {
                status: 400,
                content_type: "text/plain",
                body: message,
            }
        }
    })
}

fn host_register(request: &RecordedRequest, shared: &Shared) -> Result<Response, String> {
    let version = request
        .param("version")
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(-1);
    if version != 1 {
        return Err(format!("Invalid registration protocol version {version}"));
    }
    let command = request
        .param("command")
        .ok_or("command parameter is missing")?;
    match command {
        "get-version" => Ok(Response::ok("text/plain", "1")),
        "get-pki-trust" => Ok(ca_response(shared)),
        "get-ssh-trust" => Ok(ssh_key_response(shared)),
        "register" => register(request, shared),
        _ => Err("Invalid command".into()),
    }
}

fn pki_resource(request: &RecordedRequest, shared: &Shared) -> Result<Response, String> {
    match (request.param("resource"), request.param("format")) {
        (Some("ca-certificate"), Some("X509-PEM-CA")) => Ok(ca_response(shared)),
        (Some("engine-certificate"), Some("OPENSSH-PUBKEY")) => Ok(ssh_key_response(shared)),
        _ => Err("Invalid resource or format".into()),
    }
}

fn ca_response(shared: &Shared) -> Response {
    let state = lock(shared);
    let ca = state.decoy_ca.as_ref().unwrap_or(&state.ca);
    Response::ok("application/x-x509-ca-cert", ca.pem())
}

fn ssh_key_response(shared: &Shared) -> Response {
    let state = lock(shared);
    if state.faults.html_instead_of_ssh_key {
        return Response::ok(
            "text/html",
            "<!DOCTYPE html><html><head><title>Welcome</title></head>\
             <body><h1>Please log in</h1></body></html>\n",
        );
    }
    let mut key = state.ssh_key.clone();
    if state.faults.ssh_key_newline {
        key.push('\n');
    }
    Response::ok("text/plain", key)
}

fn register(request: &RecordedRequest, shared: &Shared) -> Result<Response, String> {
    let unique_id: String = request
        .param("uniqueId")
        .ok_or("Unique id was not provided")?
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '_'))
        .collect();
    for port in ["sshPort", "vdsPort"] {
        if let Some(value) = request.param(port) {
            // The engine parses these as Java ints; this is that parser's message.
            value
                .parse::<i32>()
                .map_err(|_| format!("For input string: \"{value}\""))?;
        }
    }
    let mut state = lock(shared);
    if let Some(message) = &state.faults.register_error {
        return Err(message.clone());
    }
    state
        .hosts
        .entry(unique_id.clone())
        .and_modify(|h| h.registrations += 1)
        .or_insert_with(|| RegisteredHost {
            unique_id,
            params: request.params.clone(),
            registrations: 1,
        });
    Ok(Response::ok("text/plain", "OK\n"))
}

/// Decodes a query string as a servlet container does: `+` is a space, `%XX` a byte.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_a_servlet_container() {
        assert_eq!(decode("a+b%20c%2Fd%C3%A9"), "a b c/dé");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(
            parse_query("version=1&command=get-version&x"),
            vec![
                ("version".into(), "1".into()),
                ("command".into(), "get-version".into()),
                ("x".into(), String::new())
            ]
        );
    }
}
