//! Real headless Chromium (Debian's) driven by playwright-core through a console served
//! over TLS with a real PAM login, registering with the loopback test engine. Screenshots are kept in
//! `$CARGO_TARGET_TMPDIR/console-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{PamService, Server, TestUser};

#[test]
fn an_administrator_works_through_the_console_in_chromium() {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run tests/deps.sh"
    );
    assert!(
        PathBuf::from("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed: run tests/deps.sh"
    );
    let pam = PamService::install();
    let user = TestUser::create(Some("hvweb"));
    let group = user.group().to_string();
    // The node the Registration page registers: a scratch tree, and a loopback engine.
    let node = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(node.path().join("etc")).unwrap();
    std::fs::write(
        node.path().join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\n",
    )
    .unwrap();
    let engine = test_engine::TestEngine::start();
    let server = Server::start_tls(|c| {
        c.pam_service = pam.name.clone();
        c.admin_groups = vec![group];
        c.sysroot = node.path().to_path_buf();
    });
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("node")
        .arg(web.join("browser/console.mjs"))
        .current_dir(&web)
        .env("HV_URL", server.origin())
        .env("HV_USER", &user.name)
        .env("HV_PASSWORD", &user.password)
        .env("HV_SHOTS", &shots)
        .env("HV_PROFILE", profile.path())
        .env("HV_ENGINE", engine.host())
        .env("HV_ENGINE_PORT", engine.port().to_string())
        .env("HV_ENGINE_FP", engine.ca_sha256_hex())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("browser: all steps passed"),
        "{stdout}\n{stderr}\nscreenshots in {}",
        shots.display()
    );
    assert_eq!(engine.hosts().len(), 1, "the engine knows the node");
    // The bundle and its signature the browser uploaded, whole.
    let uploads = server.state.config.state_dir.join("uploads");
    let bundle = std::fs::metadata(uploads.join("hvnode-9.9-1.update.tar")).unwrap();
    assert_eq!(bundle.len(), 2 << 20);
    assert_eq!(
        std::fs::read(uploads.join("hvnode-9.9-1.update.tar.minisig")).unwrap(),
        b"sig\n"
    );
    for name in [
        "login",
        "limited",
        "admin-form",
        "overview",
        "vm-confirm",
        "vms",
        "vm-detail",
        "vm-detail-phone",
        "vms-phone",
        "services-phone",
        "update-upload",
        "registration-confirm",
        "registration",
        "terminal",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}
