//! `hvnode ks …` driven as a user would: exit codes, output streams, JSON.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hvnode(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hvnode"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running hvnode")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn validate_exit_codes_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "good.ks",
        "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img\nautopart --type=thinp\nrootpw --lock\nsshkey --username=root \"ssh-ed25519 AAAA x\"\n",
    );
    write(d, "bad.ks", "text\n\nautopart --tpye=thinp\n");

    let ok = hvnode(&["ks", "validate", "good.ks"], d);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout), "good.ks: valid (0 errors, 0 warnings)\n");

    let bad = hvnode(&["ks", "validate", "good.ks", "bad.ks"], d);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stdout).contains("bad.ks: invalid (1 errors"),
        "{}",
        text(&bad.stdout)
    );
    assert!(
        text(&bad.stderr)
            .contains("bad.ks:3: error: autopart: unknown option --tpye (did you mean --type?)"),
        "{}",
        text(&bad.stderr)
    );

    let usage = hvnode(&["ks", "validate"], d);
    assert_eq!(usage.status.code(), Some(2));
    let usage = hvnode(&["ks", "validate", "--jsn", "good.ks"], d);
    assert_eq!(usage.status.code(), Some(2));

    let missing = hvnode(&["ks", "validate", "nope.ks"], d);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("nope.ks:0: error: cannot read the kickstart"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn validate_json_is_versioned() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a.ks", "install\n");
    let out = hvnode(&["ks", "validate", "--json", "a.ks"], d);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["apiVersion"], "hvnode.io/v1");
    assert_eq!(v["kind"], "KickstartValidation");
    assert_eq!(v["valid"], false);
    let d0 = &v["files"][0]["diagnostics"][0];
    assert_eq!(d0["file"], "a.ks");
    assert_eq!(d0["line"], 1);
    assert_eq!(d0["severity"], "error");
    assert_eq!(d0["message"], "install has been removed from kickstart");
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn node_rules_apply_after_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "reg.ks",
        "liveimg --url=http://x/a.img\n%packages\n@core\n%end\n%addon org_hvnode_register --engine=engine.example.com:99999\n%end\n",
    );
    let out = hvnode(&["ks", "validate", "reg.ks"], d);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(
            "reg.ks:5: error: org_hvnode_register: --engine \"engine.example.com:99999\": port"
        ),
        "{err}"
    );
    assert!(
        err.contains("reg.ks:2: warning: %packages does nothing with liveimg"),
        "{err}"
    );
    assert!(
        err.contains("reg.ks:1: warning: liveimg without --checksum"),
        "{err}"
    );
}

#[test]
fn plan_and_render() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "main.ks",
        "%include parts.inc\nnetwork --device=ens3 --bootproto=static --ip=192.0.2.5 --netmask=255.255.255.0\n%addon org_hvnode_register --engine=[::1]:8443 --fingerprint=SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n%end\n",
    );
    write(
        d,
        "parts.inc",
        "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img\nautopart --type=thinp\nrootpw --lock\n",
    );
    let out = hvnode(&["ks", "plan", "--json", "main.ks"], d);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "NodeInstallPlan");
    let p = &v["plan"];
    assert_eq!(p["layout"]["layout"], "auto");
    assert_eq!(p["layout"]["scheme"], "thinp");
    assert_eq!(
        p["image"]["url"],
        "file:///run/initramfs/live/LiveOS/squashfs.img"
    );
    assert_eq!(p["network"][0]["ip"], "192.0.2.5");
    assert_eq!(p["registration"]["engine_host"], "::1");
    assert_eq!(p["registration"]["engine_port"], 8443);

    let out = hvnode(&["ks", "render", "main.ks"], d);
    assert_eq!(out.status.code(), Some(0));
    let rendered = text(&out.stdout);
    assert!(
        rendered.starts_with(
            "liveimg --url=file:///run/initramfs/live/LiveOS/squashfs.img\nautopart --type=thinp\n"
        ),
        "{rendered}"
    );
    assert!(
        rendered.contains("%addon org_hvnode_register --engine=[::1]:8443"),
        "{rendered}"
    );
}
