//! `nodectl diagnostics`: the report is a gzip'd tar with its folder, the
//! expected members, hvnode's settings with their secrets removed, no private
//! keys, and a README naming what could not be read.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use nodectl::diagnostics::{self, Options};

/// The members of a report, by name under its folder, and the folder.
fn open(gz: &[u8]) -> (String, BTreeMap<String, String>) {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    let mut top = String::new();
    let mut members = BTreeMap::new();
    for entry in tar.entries().unwrap() {
        let mut e = entry.unwrap();
        let path = e.path().unwrap().display().to_string();
        if e.header().entry_type().is_dir() {
            top = path.trim_end_matches('/').to_string();
            continue;
        }
        let name = path
            .strip_prefix(&format!("{top}/"))
            .unwrap_or_else(|| panic!("{path} is outside the report's folder {top}"))
            .to_string();
        let mut text = Vec::new();
        e.read_to_end(&mut text).unwrap();
        members.insert(name, String::from_utf8_lossy(&text).into_owned());
    }
    (top, members)
}

fn put(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn the_report_holds_what_support_asks_for_without_secrets() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    put(
        r,
        "etc/hvnode/agent.toml",
        "listen = \"[::]:9090\"\nhelper_socket = \"/run/hvnode-helper/socket\"\n\
         [smtp]\npassword = \"hunter2\"\n",
    );
    put(
        r,
        "etc/hvnode/registration.conf",
        "engine=engine.example.com\nengine_fingerprint=SHA256:abc\ntoken=s3cr3t-token\n",
    );
    put(
        r,
        "etc/hvnode/ws-certs.d/0-self-signed.key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n",
    );
    put(
        r,
        "etc/hvnode/ws-certs.d/odd.conf",
        "-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n",
    );
    put(
        r,
        "etc/hvnode/trusted.d/hvnode-ABCD.pub",
        "untrusted comment: key\nRWQ\n",
    );
    put(r, "etc/os-release", "PRETTY_NAME=\"hvnode test\"\n");
    put(r, "var/log/libvirt/libvirtd.log", "daemon started\n");
    put(
        r,
        "var/log/libvirt/qemu/vm1.log",
        "qemu line 1\nqemu line 2\n",
    );
    put(r, "var/log/libvirt/qemu/vm1.log.1", "rotated: not a .log\n");
    // No /var/log/hvnode: a node installed another way.
    let options = Options {
        root: r.to_path_buf(),
        host: "node1.example.com".into(),
        now: 1_795_000_000,
        progress: false,
        ..Options::for_node()
    };
    let (gz, summary) = diagnostics::write(Vec::new(), &options).unwrap();
    let (top, m) = open(&gz);
    assert_eq!(top, "hvnode-diagnostics-node1.example.com-20261118T110640Z");
    assert_eq!(summary.members, m.len());
    for name in [
        "lvs.json",
        "journal-since-boot.txt",
        "dmesg.txt",
        "uname.txt",
        "nodectl-info.json",
        "nodectl-check.json",
    ] {
        // On a build host some are missing (no lvs, no journal); the README says so.
        assert!(
            m.contains_key(name) || m["README.txt"].contains(&format!("\n  {name}: ")),
            "{name} is neither in the report nor said missing:\n{}",
            m["README.txt"]
        );
    }
    assert!(m["os-release"].contains("hvnode test"));
    assert!(m["mounts.txt"].contains(" / "), "{}", m["mounts.txt"]);
    assert_eq!(
        m["var/log/libvirt/qemu/vm1.log"],
        "qemu line 1\nqemu line 2\n"
    );
    assert_eq!(m["var/log/libvirt/libvirtd.log"], "daemon started\n");
    assert!(!m.contains_key("var/log/libvirt/qemu/vm1.log.1"));
    if let Some(info) = m.get("nodectl-info.json") {
        let v: serde_json::Value = serde_json::from_str(info).unwrap();
        assert_eq!(v["kind"], "NodeInfo", "{info}");
    }
    if let Some(check) = m.get("nodectl-check.json") {
        let v: serde_json::Value = serde_json::from_str(check).unwrap();
        assert_eq!(v["kind"], "NodeCheck", "{check}");
    }

    // Settings, with their secrets removed; no private key in any form.
    let agent = &m["etc/hvnode/agent.toml"];
    assert!(
        agent.contains("[::]:9090") && agent.contains("(removed)"),
        "{agent}"
    );
    let conf = &m["etc/hvnode/registration.conf"];
    assert!(conf.contains("engine=engine.example.com\n"), "{conf}");
    assert!(conf.contains("token=(removed)"), "{conf}");
    for (name, text) in &m {
        for secret in ["hunter2", "s3cr3t-token", "PRIVATE KEY", "AAAA", "BBBB"] {
            if name == "README.txt" {
                continue;
            }
            assert!(!text.contains(secret), "{secret} in {name}:\n{text}");
        }
    }
    assert!(
        !m.keys().any(|k| k.ends_with(".key") || k.ends_with(".pub")),
        "{:?}",
        m.keys()
    );
    let listing = &m["etc-hvnode-files.txt"];
    assert!(
        listing.contains("/etc/hvnode/ws-certs.d/0-self-signed.key"),
        "{listing}"
    );

    // The README lists what is there and names what is not, and why.
    let readme = &m["README.txt"];
    assert!(
        readme.contains("var/log/libvirt/qemu/vm1.log: qemu's log of VM vm1"),
        "{readme}"
    );
    assert!(readme.contains("64.0 MiB"), "{readme}");
    let missing = readme.split("Could not be read:").nth(1).unwrap();
    assert!(
        missing.contains("var/log/hvnode/: listing /var/log/hvnode"),
        "{readme}"
    );
    assert!(
        missing.contains("etc/hvnode/ws-certs.d/odd.conf: "),
        "{readme}"
    );
    assert!(missing.contains("holds a private key"), "{readme}");
}

#[test]
fn the_command_streams_to_standard_output_and_writes_files_whole() {
    let nodectl = env!("CARGO_BIN_EXE_nodectl");
    let help = Command::new(nodectl).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("diagnostics"));

    let out = Command::new(nodectl)
        .args(["diagnostics", "-o", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (top, m) = open(&out.stdout);
    assert!(top.starts_with("hvnode-diagnostics-"), "{top}");
    assert!(
        m.contains_key("README.txt") && m.contains_key("uname.txt"),
        "{:?}",
        m.keys()
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("compressed from"), "{said}");

    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(nodectl)
        .args(["diagnostics", "-o"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "no partial file left: {files:?}");
    assert!(files[0].starts_with("hvnode-diagnostics-") && files[0].ends_with(".tar.gz"));
    let path = dir.path().join(&files[0]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (_, m) = open(&std::fs::read(&path).unwrap());
    assert!(m.contains_key("README.txt"));
}
