//! The logs page and API on a real journal: entries written with `systemd-cat` are
//! found by text and priority, and followed live over server-sent events.
//! tests/deps.sh starts a journald when systemd does not run one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, get};

fn log(tag: &str, priority: &str, message: &str) {
    assert!(
        std::path::Path::new("/run/systemd/journal/socket").exists(),
        "no journald: run tests/deps.sh, which starts one"
    );
    let mut child = Command::new("systemd-cat")
        .args(["-t", tag, "-p", priority])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{message}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

fn find(server: &Server, s: &common::Session, query: &str, needle: &str) -> Vec<serde_json::Value> {
    // journald writes asynchronously: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = get(&server.url(&format!("/api/v1/logs?{query}")), Some(s), &[]);
        assert_eq!(r.status, 200, "{}", r.body);
        let items = r.json()["data"]["items"].as_array().unwrap().clone();
        let hits: Vec<_> = items
            .into_iter()
            .filter(|e| e["message"].as_str().unwrap_or("").contains(needle))
            .collect();
        if !hits.is_empty() || Instant::now() > deadline {
            return hits;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn entries_are_found_by_text_and_priority() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let tag = format!("hvnode-test-{}", std::process::id());
    let text = format!("disk-{}-failing", std::process::id());
    log(&tag, "err", &format!("{text} on sdz"));
    let hits = find(&server, &s, &format!("grep={text}"), &text);
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["priority"], 3);
    assert_eq!(hits[0]["identifier"], tag.as_str());
    // Only up to "crit": the "err" entry is left out.
    let r = get(
        &server.url(&format!("/api/v1/logs?grep={text}&priority=2")),
        Some(&s),
        &[],
    );
    assert_eq!(r.status, 200);
    assert!(r.json()["data"]["items"].as_array().unwrap().is_empty());
    // Nothing matching is an empty list, not an error.
    let r = get(
        &server.url("/api/v1/logs?grep=no-such-text-anywhere-hv"),
        Some(&s),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let page = get(&server.url(&format!("/logs?grep={text}")), Some(&s), &[]);
    assert!(page.body.contains(&format!("{text} on sdz")));
    assert!(page.body.contains(r#"class="prio-3""#));
}

#[test]
fn following_streams_new_entries() {
    let server = Server::start(|_| {});
    let s = server.session("root");
    let text = format!("follow-{}-marker", std::process::id());
    let mut resp = common::client()
        .get(&server.url(&format!("/api/v1/logs/stream?grep={text}")))
        .header("Cookie", &s.cookie)
        .header("Origin", &server.origin())
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // journalctl -f has started once the response is there; write after it.
    std::thread::sleep(Duration::from_millis(500));
    log("hvnode-follow", "notice", &format!("{text} arrived"));
    let mut lines = BufReader::new(resp.body_mut().as_reader()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let e: serde_json::Value = serde_json::from_str(data).unwrap();
            if e["message"].as_str().unwrap_or("").contains(&text) {
                assert_eq!(e["priority_name"], "notice");
                return;
            }
        }
    }
    panic!("the entry was not streamed");
}
