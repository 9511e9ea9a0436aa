//! Fuzzes what the console parses from a request before any handler runs: the
//! session cookie among `Cookie` headers, the `Origin` check, urlencoded form bodies
//! (the CSRF field and the login form) and the CSRF token comparison.
//!
//! The first byte picks the parser (low two bits) and the scheme (high bit: TLS);
//! the rest is the input. Headers are built with `HeaderValue::from_bytes`, so only
//! what hyper would let through reaches the console.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use console::guard::{form_urlencoded_field, origin_allowed, session_cookie};
use console::session::{COOKIE, same_secret};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

/// The login form as `login.rs` reads it.
#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let tls = selector & 0x80 != 0;
    match selector & 0x03 {
        0 => cookies(rest),
        1 => origin(rest, tls),
        2 => form(rest),
        _ => csrf(rest),
    }
});

/// One `Cookie` header per line; the value found must be what follows
/// `<COOKIE>=` in one of the headers, up to `;`.
fn cookies(rest: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in rest.split(|&b| b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(header::COOKIE, v);
        }
    }
    if let Some(value) = session_cookie(&headers) {
        assert!(!value.contains(';'), "cookie value holds ';': {value:?}");
        assert_eq!(value, value.trim_end(), "cookie value not trimmed");
        let needle = format!("{COOKIE}={value}");
        assert!(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains(&needle)),
            "{value:?} is in no Cookie header"
        );
    } else {
        // No header may hold the cookie as its own pair.
        for v in headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            for kv in v.split(';') {
                assert!(
                    kv.trim().split_once('=').is_none_or(|(k, _)| k != COOKIE),
                    "missed the cookie in {v:?}"
                );
            }
        }
    }
}

/// First line the `Origin`, second (if any) the `Host`; allowed exactly when there
/// is no `Origin` or it is `<scheme>://<host>` (so never `null`).
fn origin(rest: &[u8], tls: bool) {
    let mut lines = rest.splitn(2, |&b| b == b'\n');
    let origin = lines.next().and_then(|l| HeaderValue::from_bytes(l).ok());
    let host = lines.next().and_then(|l| HeaderValue::from_bytes(l).ok());
    let mut headers = HeaderMap::new();
    if let Some(o) = &origin {
        headers.insert(header::ORIGIN, o.clone());
    }
    if let Some(h) = &host {
        headers.insert(header::HOST, h.clone());
    }
    let allowed = origin_allowed(&headers, tls);
    let expected = match (&origin, &host) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(o), Some(h)) => {
            let scheme = if tls { "https" } else { "http" };
            match (o.to_str(), h.to_str()) {
                (Ok(o), Ok(h)) => o == format!("{scheme}://{h}"),
                _ => false,
            }
        }
    };
    assert_eq!(
        allowed, expected,
        "origin {origin:?} host {host:?} tls {tls}"
    );
    if origin.as_ref().is_some_and(|o| o.as_bytes() == b"null") {
        assert!(!allowed, "Origin: null allowed");
    }
}

/// A form body: the CSRF field is the first `csrf` pair of the decoded body, and
/// a decoded body encodes and decodes back to itself.
fn form(body: &[u8]) {
    let pairs: Option<Vec<(String, String)>> = serde_urlencoded::from_bytes(body).ok();
    let csrf = form_urlencoded_field(body, "csrf");
    match &pairs {
        Some(pairs) => {
            let first = pairs
                .iter()
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.clone());
            assert_eq!(csrf, first);
            let encoded = serde_urlencoded::to_string(pairs).expect("pairs of strings encode");
            let again: Vec<(String, String)> =
                serde_urlencoded::from_str(&encoded).expect("an encoded form decodes");
            assert_eq!(pairs, &again, "round trip through {encoded:?}");
        }
        None => assert_eq!(csrf, None),
    }
    if let Ok(creds) = console::error::parse_form::<Credentials>(body) {
        let pairs = pairs.expect("a body that parses as the login form parses as pairs");
        assert!(
            pairs
                .iter()
                .any(|(k, v)| k == "username" && *v == creds.username)
        );
        assert!(
            pairs
                .iter()
                .any(|(k, v)| k == "password" && *v == creds.password)
        );
    }
}

/// The token comparison: equal exactly when the strings are.
fn csrf(rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let (a, b) = text.split_once('\n').unwrap_or((&text, ""));
    assert_eq!(same_secret(a, b), a == b, "{a:?} vs {b:?}");
    assert!(same_secret(a, a));
}
