//! Uploading an update bundle and its signature through the console: streamed past
//! the 64 KiB limit of every other request, kept whole in the agent's uploads
//! folder, session and CSRF token required, names checked.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Reply, Server, Session, client, reply};

fn put(server: &Server, file: &str, session: Option<&Session>, csrf: bool, body: &[u8]) -> Reply {
    let mut req = client()
        .put(server.url(&format!("/api/v1/node/update/upload/{file}")))
        .header("Content-Type", "application/octet-stream");
    if let Some(s) = session {
        req = req.header("Cookie", &s.cookie);
        if csrf {
            req = req.header("X-CSRF-Token", &s.csrf);
        }
    }
    reply(req.send(body))
}

#[test]
fn a_bundle_and_its_signature_are_uploaded_whole_with_the_session_only() {
    let server = Server::start(|_| {});
    let s = server.admin_session("root");
    let uploads = server.state.config.state_dir.join("uploads");
    // 3 MiB: far past the body limit of forms and JSON.
    let bundle: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();

    let r = put(
        &server,
        "hvnode-1.1-1.update.tar.minisig",
        Some(&s),
        true,
        b"sig\n",
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = put(&server, "hvnode-1.1-1.update.tar", Some(&s), true, &bundle);
    assert_eq!(r.status, 201, "{}", r.body);
    let j = r.json();
    assert_eq!(j["kind"], "UpdateUpload", "{j}");
    assert_eq!(j["data"]["bytes"], bundle.len() as u64, "{j}");
    let path = uploads.join("hvnode-1.1-1.update.tar");
    assert_eq!(j["data"]["path"], path.to_string_lossy().as_ref(), "{j}");
    assert_eq!(std::fs::read(&path).unwrap(), bundle);
    assert_eq!(
        std::fs::read(uploads.join("hvnode-1.1-1.update.tar.minisig")).unwrap(),
        b"sig\n"
    );

    // Without the CSRF token, without a session, or with a name that is not a
    // bundle's: refused, nothing written.
    let before = std::fs::read_dir(&uploads).unwrap().count();
    let r = put(&server, "hvnode-1.2-1.update.tar", Some(&s), false, b"x");
    assert_eq!(r.status, 403, "{}", r.body);
    let r = put(&server, "hvnode-1.2-1.update.tar", None, false, b"x");
    assert_eq!(r.status, 401, "{}", r.body);
    for bad in [".hidden.update.tar", "notes.txt", "x.update.tar.gz"] {
        let r = put(&server, bad, Some(&s), true, b"x");
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("file name"), "{}", r.body);
    }
    let r = put(&server, "..%2Fescape.update.tar", Some(&s), true, b"x");
    assert!(
        r.status == 400 || r.status == 404,
        "{}: {}",
        r.status,
        r.body
    );
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), before);
    assert!(
        !server
            .state
            .config
            .state_dir
            .join("escape.update.tar")
            .exists()
    );

    // A new bundle replaces the last one and its signature.
    let r = put(&server, "hvnode-1.2-1.update.tar", Some(&s), true, b"v1.2");
    assert_eq!(r.status, 201, "{}", r.body);
    let mut names: Vec<String> = std::fs::read_dir(&uploads)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["hvnode-1.2-1.update.tar"]);
}
